"""Studio views that explain one phenomenon each or look inside a network while and after it trains
(through time, feature maps, filters, class reports), docked beside the plot panels."""
