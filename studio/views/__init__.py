"""Studio views that explain one phenomenon each (docked beside the plot panels)."""
