"""The weekly reputation report: ``build`` reads the data of an ISO week, ``render`` writes it as
HTML (inline SVG charts, for mail clients), CSV and JSON, ``archive`` stores it in the database and
runs the weekly job, ``mail`` mails it to the admins and retries, ``files`` exports it as files and
imports the files of versions that kept it there.
"""

from reports.archive import WeeklyReports, build_and_store, build_texts, store_texts
from reports.build import Report, build_report, last_week, parse_week, week_bounds
from reports.files import FileImport, export_files, import_files
from reports.mail import NotMailed, ReportMailer, ReportTexts
from reports.render import render_csv, render_html, render_json, report_data

__all__ = ["FileImport", "NotMailed", "Report", "ReportMailer", "ReportTexts", "WeeklyReports",
           "build_and_store", "build_report", "build_texts", "export_files", "import_files", "last_week",
           "parse_week", "render_csv", "render_html", "render_json", "report_data", "store_texts",
           "week_bounds"]
