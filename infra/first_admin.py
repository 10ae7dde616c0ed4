"""Create the first merchant admin in a deployed stage (what `make tables` does for the local stack).

    ADMIN_USERNAME=admin python -m infra.first_admin --stage prod

With a CloudFormation stack the tables and queues come from the stack, and `make tables` must not
be pointed at it (it would try to re-create the queues with other attributes); this does only
the admin part. It uses your AWS credentials and region. The stage's variables come from
`.chalice/config.json` (TABLE_PREFIX, ADMIN_PASSWORD_SSM, AUTH_TOKEN_SECRET_SSM, ...) and win
over the shell's; ADMIN_USERNAME may come from the shell when the stage does not set it.
Creating is idempotent: an existing admin is left as it is.
"""
from __future__ import annotations

import argparse
import os
import sys

from infra.build_template import PROJECT_DIR


def stage_environment(stage: str) -> dict[str, str]:
    from chalice.cli.factory import CLIFactory

    factory = CLIFactory(project_dir=str(PROJECT_DIR), environ=os.environ)
    if stage not in factory.load_project_config().get("stages", {}):
        raise SystemExit(f"first_admin: no stage {stage!r} in .chalice/config.json")
    return dict(factory.create_config_obj(chalice_stage_name=stage).environment_variables)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.first_admin", description=__doc__.split("\n")[0])
    parser.add_argument("--stage", required=True)
    args = parser.parse_args(argv)
    if "chalicelib" in sys.modules:
        raise SystemExit("first_admin: chalicelib is already imported; run this in a fresh process")
    environment = stage_environment(args.stage)
    if not environment.get("TABLE_PREFIX"):
        raise SystemExit(f"first_admin: stage {args.stage!r} sets no TABLE_PREFIX")
    os.environ.update(environment)  # before importing chalicelib: table names are fixed then
    from botocore.exceptions import BotoCoreError, ClientError

    from chalicelib.services.auth import ensure_first_admin
    from chalicelib.settings import get_settings

    try:
        settings = get_settings()  # reads every SSM parameter the stage names
        if not settings.admin_username or not settings.admin_password:
            print("first_admin: set ADMIN_USERNAME (shell or stage) and ADMIN_PASSWORD_SSM (stage)", file=sys.stderr)
            return 2
        created = ensure_first_admin()
    except (BotoCoreError, ClientError) as error:
        print(f"first_admin: {error}", file=sys.stderr)
        return 1
    print(f"first_admin: {settings.admin_username!r} {'created' if created else 'already present'} "
          f"in {settings.table_prefix}admins")
    return 0


if __name__ == "__main__":
    sys.exit(main())
