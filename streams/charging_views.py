"""HTTP API of the charging planner: sites, their newest schedule and plan metrics."""

from __future__ import annotations

import json
from typing import Any

from faust import web


def register_charging_views(app: Any) -> None:
    """``GET /sites``, ``GET /sites/{site_id}/schedule``, ``GET /sites/{site_id}/plan-metrics``."""
    sites = app.charging_sites

    def newest_plan(view: web.View, site_id: str) -> tuple[dict[str, Any] | None, Any]:
        """(the site's newest plan, None) or (None, the 404 response that explains why there is none)."""
        if site_id not in sites:
            return None, view.json({"error": f"unknown site {site_id!r}; configured sites: {sorted(sites)}"},
                                   status=404)
        raw = app.charging_plans.data.get(site_id.encode())
        if raw is None:
            return None, view.json({"error": f"no plan for {site_id!r} yet: no charging request or grid signal "
                                             "has arrived for it"}, status=404)
        return json.loads(raw), None

    @app.page("/sites")
    class Sites(web.View):
        async def get(self, request: web.Request) -> web.Response:
            return self.json({"sites": [cfg.as_dict() for cfg in sites.values()]})

    @app.page("/sites/{site_id}/schedule")
    class Schedule(web.View):
        @app.table_route(table=app.charging_plans, match_info="site_id")
        async def get(self, request: web.Request, site_id: str) -> web.Response:
            plan, error = newest_plan(self, site_id)
            return error if plan is None else self.json(plan)

    @app.page("/sites/{site_id}/plan-metrics")
    class PlanMetrics(web.View):
        @app.table_route(table=app.charging_plans, match_info="site_id")
        async def get(self, request: web.Request, site_id: str) -> web.Response:
            plan, error = newest_plan(self, site_id)
            if plan is None:
                return error
            return self.json({"site_id": site_id, "method": plan["method"], "trigger": plan["trigger"],
                              "horizon_start": plan["horizon_start"], "vehicles": len(plan["vehicles"]),
                              "unmet_vehicles": sum(1 for v in plan["vehicles"] if v["unmet_kwh"] > 1e-3),
                              **plan["metrics"]})
