"""HTTP API of the charging planner: sites, their newest schedule and plan metrics."""

from __future__ import annotations

import json
from typing import Any

from faust import web

from streams.routing import route_to_owner


def register_charging_views(app: Any) -> None:
    """``GET /sites``, ``GET /sites/{site_id}/schedule``, ``GET /sites/{site_id}/plan-metrics``."""
    sites = app.charging_sites
    requests_topic = app.fleet_settings.topic_charging_requests

    async def elsewhere(request: web.Request, site_id: str) -> Any:
        """The owner's answer or an honest 503 (None: this worker owns the site's settled partition)."""
        if site_id not in sites:
            return None  # answered here: 404 naming the configured sites
        return await route_to_owner(app, site_id, request, table=app.charging_plans, source_topic=requests_topic)

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
        async def get(self, request: web.Request, site_id: str) -> web.Response:
            routed = await elsewhere(request, site_id)
            if routed is not None:
                return routed
            plan, error = newest_plan(self, site_id)
            return error if plan is None else self.json(plan)

    @app.page("/sites/{site_id}/plan-metrics")
    class PlanMetrics(web.View):
        async def get(self, request: web.Request, site_id: str) -> web.Response:
            routed = await elsewhere(request, site_id)
            if routed is not None:
                return routed
            plan, error = newest_plan(self, site_id)
            if plan is None:
                return error
            return self.json({"site_id": site_id, "method": plan["method"], "trigger": plan["trigger"],
                              "horizon_start": plan["horizon_start"], "vehicles": len(plan["vehicles"]),
                              "unmet_vehicles": sum(1 for v in plan["vehicles"] if v["unmet_kwh"] > 1e-3),
                              **plan["metrics"]})
