"""Long-running loops of the control plane, each toggled by a setting and safe to run on several
servers at once (they keep no state other servers need)."""
