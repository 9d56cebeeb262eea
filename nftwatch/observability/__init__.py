"""What the service tells its operator: Prometheus metrics, health, structured logs."""
