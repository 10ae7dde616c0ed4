"""The Chalice app: creates it and registers the blueprints. No routes, no logic here."""
from chalice import Chalice

from chalicelib import log
from chalicelib.api import auth, me, openapi

app = Chalice(app_name="wechat-store")
log.configure()

for blueprint_module in (openapi, auth, me):
    app.register_blueprint(blueprint_module.api.blueprint)
