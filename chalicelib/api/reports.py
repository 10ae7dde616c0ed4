"""The merchant's reports: `GET /v1/admin/reports/{sales|funnel|products|repurchase|rfm}`.

Each takes `from` and `to` (dates, Asia/Shanghai, at most 92 days) and answers JSON, or CSV
with `format=csv` (one row per item; text/csv, UTF-8 with a BOM so spreadsheets read Chinese).
"""
from __future__ import annotations

from typing import Any, Callable

from chalice import Response

from chalicelib.api import cors
from chalicelib.api.http import ApiBlueprint, ApiRequest
from chalicelib.lazy import lazy_module, lazy_names
(FunnelReport, ProductReport, ProductReportQuery, RepurchaseReport, ReportQuery, RfmReport,
 SalesReport) = lazy_names(
    "chalicelib.schemas.reports",
    "FunnelReport", "ProductReport", "ProductReportQuery", "RepurchaseReport", "ReportQuery",
    "RfmReport", "SalesReport")

reports = lazy_module("chalicelib.services.reports")

api = ApiBlueprint(__name__, tag="analytics")
_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}}


def _doc(model: type, columns: tuple[str, ...]) -> dict[str, Any]:
    """The operation's responses: JSON or (format=csv) CSV with these columns."""
    return {"responses": {
        "200": {"description": f"OK; with format=csv a CSV of {', '.join(columns)}",
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}},
                            "text/csv": {"schema": {"type": "string"}}}},
        "400": {"description": "Bad input (dates, range over 92 days)", **_ERROR},
        "401": {"description": "Not logged in, or the token is invalid", **_ERROR},
        "403": {"description": "Wrong role", **_ERROR},
        "503": {"description": "Temporarily unavailable; retry (see Retry-After)", **_ERROR}}}


SALES_COLUMNS = ("date", "orders", "paid_orders", "gmv_fen", "refund_fen", "aov_fen")
FUNNEL_COLUMNS = ("date", "pv", "product_views", "add_to_cart", "shares", "orders", "paid_orders",
                  "exposure", "click", "cart", "order", "paid")
PRODUCT_COLUMNS = ("rank", "product_id", "name", "views", "add_to_cart", "orders", "ordered_units", "paid_orders",
                   "paid_units", "paid_fen")
REPURCHASE_COLUMNS = ("cohort", "customers", "repurchased", "rate_permille", "retention")
RFM_COLUMNS = ("segment", "customers", "monetary_fen")


@api.route("GET", "/v1/admin/reports/sales", auth="admin", query=ReportQuery, response=SalesReport,
           doc=_doc(SalesReport, SALES_COLUMNS),
           summary="Per day: orders placed, orders paid, GMV (paid that day), refunds, AOV")
def sales_report(request: ApiRequest) -> Any:
    report = reports.sales(request.query.from_, request.query.to)
    return _answer(request, report, "sales", SALES_COLUMNS, lambda r: [i.model_dump() for i in r.items])


@api.route("GET", "/v1/admin/reports/funnel", auth="admin", query=ReportQuery, response=FunnelReport,
           doc=_doc(FunnelReport, FUNNEL_COLUMNS),
           summary="Per day: exposure -> click -> cart -> order -> paid (unique users), counts, and by source")
def funnel_report(request: ApiRequest) -> Any:
    report = reports.funnel(request.query.from_, request.query.to)
    return _answer(request, report, "funnel", FUNNEL_COLUMNS,
                   lambda r: [{**i.model_dump(exclude={"stages"}), **i.stages.model_dump()} for i in r.items])


@api.route("GET", "/v1/admin/reports/products", auth="admin", query=ProductReportQuery, response=ProductReport,
           doc=_doc(ProductReport, PRODUCT_COLUMNS),
           summary="Product ranking over the range by `sort` (paid_fen, paid_units, views, add_to_cart)")
def products_report(request: ApiRequest) -> Any:
    query = request.query
    report = reports.products(query.from_, query.to, query.sort, query.limit)
    return _answer(request, report, "products", PRODUCT_COLUMNS, lambda r: [i.model_dump() for i in r.items])


@api.route("GET", "/v1/admin/reports/repurchase", auth="admin", query=ReportQuery, response=RepurchaseReport,
           doc=_doc(RepurchaseReport, REPURCHASE_COLUMNS),
           summary="Monthly cohorts (first payment in the range's months): size, repurchase rate, retention")
def repurchase_report(request: ApiRequest) -> Any:
    report = reports.repurchase(request.query.from_, request.query.to)
    return _answer(request, report, "repurchase", REPURCHASE_COLUMNS,
                   lambda r: [{**i.model_dump(), "retention": " ".join(map(str, i.retention))} for i in r.items])


@api.route("GET", "/v1/admin/reports/rfm", auth="admin", query=ReportQuery, response=RfmReport,
           doc=_doc(RfmReport, RFM_COLUMNS),
           summary="RFM segments and lifecycle stages as of the latest nightly run within the range")
def rfm_report(request: ApiRequest) -> Any:
    report = reports.rfm(request.query.from_, request.query.to)
    return _answer(request, report, "rfm", RFM_COLUMNS, lambda r: [i.model_dump() for i in r.items])


def _answer(request: ApiRequest, report: Any, name: str, columns: tuple[str, ...],
            rows: Callable[[Any], list[dict[str, Any]]]) -> Any:
    if request.query.format != "csv":
        return report
    from chalicelib.domain.reports import to_csv

    query = request.query
    filename = f"{name}-{query.from_.isoformat()}-{query.to.isoformat()}.csv"
    headers = {"Content-Type": "text/csv; charset=utf-8", "Content-Disposition": f'attachment; filename="{filename}"',
               **cors.origin_headers(request.raw)}
    return Response(body="\ufeff" + to_csv(columns, rows(report)), status_code=200, headers=headers)


REPORT_NAMES = ("sales", "funnel", "products", "repurchase", "rfm")


@api.route("GET", "/v1/admin/reports/{name}", auth="admin", errors=(404,),
           summary="Any other report name: 404 report_not_found (the five reports have routes of their own above)")
def unknown_report(request: ApiRequest) -> Any:
    from chalicelib.errors import NotFound

    raise NotFound(f"No report {request.params['name'][:40]!r}: one of {', '.join(REPORT_NAMES)}",
                   code="report_not_found")
