"""Marketing references: "we sold <product> to <customer>", only where the policy and the customer allow it."""
