"""The peers twin is benchmarked against (tipg on PostGIS, pygeoapi on the same GeoPackage).

Shell side: ``setup.sh`` installs and starts them, ``load.sh STORE.gpkg`` loads a twin store. Python
side (with ``bench/`` on ``sys.path``): ``running_peers()`` starts them and yields URL builders by
name; ``workloads.draw_seeds`` and ``workloads.build`` turn one seeded sample of a store into the same
requests for every server; ``compare.py`` runs the whole comparison.
"""
