"""Synthetic Chinese names, addresses and contact details, plainly fake.

People are named ``王某某07`` (a surname, 某某 and a serial) and given phone numbers that no Chinese
operator assigns: mobiles under network code 154, Shanghai landlines whose local number starts with 0.
Such values cannot belong to anyone, yet twin still treats them as personal data and masks them.
Places are made of common name characters.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余于杜叶程魏苏吕丁沈")
PLACE_CHARS = list("安康平和兴华昌盛嘉定祥瑞长宁永泰丰裕德明光新民乐阳春景秀福寿金桂兰芳松竹梅林泉溪澄清文")
STREET_SUFFIX = ["路", "路", "路", "路", "街", "支路", "弄"]
COMPOUND_SUFFIX = ["花园", "新村", "苑", "小区", "公寓", "家园", "名邸", "雅苑", "新苑", "坊", "湾", "里"]
SITE_KINDS = ["住宅项目", "商业综合体", "学校新建工程", "道路改建工程", "地铁站配套工程", "产业园区一期",
              "医院扩建工程", "保障性住房项目", "旧区改造项目", "排水泵站工程"]
HERITAGE_KINDS = ["住宅", "里弄", "洋房", "公寓", "旧址", "银行旧址", "教堂", "学校旧址"]
CONTRACTOR_SUFFIX = ["建设工程有限公司", "建工集团有限公司", "市政工程有限公司", "建筑安装有限公司"]


def place_stems(rng: np.random.Generator, n: int) -> NDArray[np.str_]:
    """Two-character place-name stems such as 康平 or 瑞林 (the two characters differ)."""
    chars = np.array(PLACE_CHARS)
    a = rng.integers(0, len(chars), n)
    b = (a + rng.integers(1, len(chars), n)) % len(chars)
    return np.char.add(chars[a], chars[b])


def unique_stems(rng: np.random.Generator, n: int, taken: set[str] | None = None) -> list[str]:
    """``n`` distinct stems not in ``taken``, three characters once two run out."""
    seen = set(taken or ())
    out: list[str] = []
    while len(out) < n:
        for stem in place_stems(rng, 2 * (n - len(out))).tolist():
            if len(seen) > 0.6 * len(PLACE_CHARS) ** 2:
                stem += PLACE_CHARS[int(rng.integers(0, len(PLACE_CHARS)))]
            if stem not in seen and len(out) < n:
                seen.add(stem)
                out.append(stem)
    return out


def choose(rng: np.random.Generator, options: list[str], n: int) -> NDArray[np.str_]:
    return np.array(options)[rng.integers(0, len(options), n)]


def street_names(numbers: NDArray[np.int64]) -> NDArray[np.str_]:
    """A fixed name for each synthetic street number, so every piece of one street shares its name."""
    chars = np.array(PLACE_CHARS)
    suffix = np.array(STREET_SUFFIX)
    h = (np.asarray(numbers, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(20)
    a = (h % np.uint64(len(chars))).astype(np.intp)
    b = (a + 1 + ((h >> np.uint64(8)) % np.uint64(len(chars) - 1)).astype(np.intp)) % len(chars)
    s = ((h >> np.uint64(16)) % np.uint64(len(suffix))).astype(np.intp)
    return np.char.add(np.char.add(chars[a], chars[b]), suffix[s])


def padded(values: NDArray[np.integer], width: int) -> NDArray[np.str_]:
    """Integers as zero-padded decimal strings (``7`` -> ``0007``)."""
    return np.array([f"{v:0{width}d}" for v in np.asarray(values).tolist()], dtype=f"<U{max(width, 1) + 12}")


#: Written between a person's surname and serial: 某某 is how Chinese documents withhold a given name (王某某).
PERSON_MARK = "某某"

#: The mobile network code of every demo mobile number. MIIT's allocation table of mobile network codes
#: (我国公众移动通信网网号及H0分配情况, March 2023) allocates every 15X code except 154, so a 154 number
#: reaches no one (10X-12X were not chosen: they begin with service numbers such as 110, 120, 12345).
FICTITIOUS_MOBILE_PREFIX = "154"

#: Shanghai's area code and the first digit of every demo office number. Local numbers start with 2-9: 0 is the
#: trunk prefix (and 1 starts service numbers such as 12345), so no Shanghai line is 021-0xxxxxxx.
FICTITIOUS_LANDLINE_PREFIX = "021-0"


def people(rng: np.random.Generator, n: int) -> NDArray[np.str_]:
    """Visibly synthetic names of people (王某某07): personal data to twin all the same, served masked (王****)."""
    return np.char.add(np.char.add(choose(rng, SURNAMES, n), PERSON_MARK), padded(rng.integers(1, 100, n), 2))


def mobiles(rng: np.random.Generator, n: int) -> NDArray[np.str_]:
    """Mobile numbers no operator assigns, such as 15412340427 (served masked: 154****0427)."""
    return np.char.add(FICTITIOUS_MOBILE_PREFIX, padded(rng.integers(0, 100_000_000, n), 8))


def landlines(rng: np.random.Generator, n: int) -> NDArray[np.str_]:
    """Shanghai office numbers no line has, such as 021-04120427 (served masked: 021*****0427)."""
    return np.char.add(FICTITIOUS_LANDLINE_PREFIX, padded(rng.integers(0, 10_000_000, n), 7))


def dates(rng: np.random.Generator, n: int, first: str, last: str) -> NDArray[np.str_]:
    """Uniform random ISO dates between ``first`` and ``last`` inclusive."""
    lo, hi = np.datetime64(first, "D"), np.datetime64(last, "D")
    days = rng.integers(0, int((hi - lo).astype(int)) + 1, n)
    return (lo + days.astype("timedelta64[D]")).astype(str)
