"""Importing messy GIS files into the store and exporting layers back out (``twin import`` / ``twin export``)."""

from twin.io.export import ExportOptions, export_layer
from twin.io.importer import ImportOptions, import_file
from twin.io.report import ExportReport, ImportReport, Problem

__all__ = ["ExportOptions", "ExportReport", "ImportOptions", "ImportReport", "Problem", "export_layer", "import_file"]
