"""The alert webhook: Slack- and Teams-compatible JSON posted with httpx."""

import dagster as dg
import httpx


class AlertWebhook(dg.ConfigurableResource):
    """Where alerts go (`ETL_ALERT_WEBHOOK_URL`, a secret) and the UI address their run links use."""

    url: str | None = None
    ui_url: str = "http://127.0.0.1:3000"

    def post(self, payload: dict) -> None:
        response = httpx.post(self.url, json=payload, timeout=10)
        response.raise_for_status()

    def run_link(self, run_id: str) -> str:
        return f"{self.ui_url.rstrip('/')}/runs/{run_id}"
