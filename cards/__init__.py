"""Dataset-card templates (installed as `shift_hub.cards`)."""
