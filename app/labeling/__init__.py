"""The labeler: applies the policy's sensitivity label to customer mail and files, never downgrading."""
