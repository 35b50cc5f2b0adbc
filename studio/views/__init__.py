"""Views that look inside a network while and after it trains (feature maps, filters, class reports)."""
