"""Logistics sweeps: poll the paths no push reached for a while, and alert stalled shipments once."""
from __future__ import annotations

from chalice import Blueprint, Rate

from chalicelib.lazy import lazy_module
from chalicelib.log import get_logger

tracking_sweeps = lazy_module("chalicelib.services.tracking_sweeps")

bp = Blueprint(__name__)
log = get_logger(__name__)


@bp.schedule(Rate(15, unit=Rate.MINUTES),
             description="Ask WeChat for the path of waybills no push reached for LOGISTICS_POLL_AFTER_HOURS")
def poll_waybill_paths(event) -> None:
    outcomes = tracking_sweeps.sweep_polls()
    if outcomes:
        log.info("waybill path poll sweep", **outcomes)


@bp.schedule(Rate(15, unit=Rate.MINUTES),
             description="Alert the merchant, once per shipment, of a parcel not picked up or not moving")
def sweep_shipment_anomalies(event) -> None:
    outcomes = tracking_sweeps.sweep_anomalies()
    if outcomes:
        log.info("shipment anomaly sweep", **outcomes)
