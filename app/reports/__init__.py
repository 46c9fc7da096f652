"""Reports: label coverage per customer and overall, and how long customers have been inactive."""
