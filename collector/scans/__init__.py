"""Network scanning of units' declared ranges.

``targets`` and ``nmap`` are pure runners (no FastAPI, no SQLModel), so a scan worker can use them without the
web stack; the models, service and routes around them live alongside.
"""
