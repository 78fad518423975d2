# KPI rollups, surveys and SLA policies arrive with the KPI issue; the app is
# registered now so the project's shape matches DESIGN.md.
