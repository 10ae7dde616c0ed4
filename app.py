"""The Chalice app: creates it and registers the blueprints. No routes, no logic here."""
from chalice import Chalice

from chalicelib import log
from chalicelib.api import auth, me, openapi
from chalicelib.jobs import maintenance, notifications

app = Chalice(app_name="wechat-store")
log.configure()

for api_module in (openapi, auth, me):
    app.register_blueprint(api_module.api.blueprint)
for job_module in (notifications, maintenance):
    app.register_blueprint(job_module.bp)
