"""The weekly reputation report: ``build`` reads the data of an ISO week, ``render`` writes it as
HTML (inline SVG charts, for mail clients), CSV and JSON, ``archive`` stores it and runs the weekly job,
``mail`` mails it to the admins and retries.
"""

from reports.archive import DEFAULT_DIRECTORY, WeeklyReports, build_and_store
from reports.build import Report, build_report, last_week, parse_week, week_bounds
from reports.mail import NotMailed, ReportMailer, ReportTexts
from reports.render import render_csv, render_html, render_json, report_data

__all__ = ["DEFAULT_DIRECTORY", "NotMailed", "Report", "ReportMailer", "ReportTexts", "WeeklyReports",
           "build_and_store", "build_report", "last_week", "parse_week", "render_csv",
           "render_html", "render_json", "report_data", "week_bounds"]
