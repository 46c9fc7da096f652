import pytest

from app.classification import CurrentLabel, LabelAction, decide_label_action
from app.policy import Policy, resolve_labels

LABELS = resolve_labels(
    Policy(),
    [("p", "Public", 0), ("g", "General", 1), ("c", "Confidential", 2), ("h", "Highly Confidential", 3)],
)
CONFIDENTIAL = LABELS.by_id["c"]


@pytest.mark.parametrize(
    ("current", "override_manual", "action"),
    [
        (None, False, LabelAction.APPLY),
        (CurrentLabel("c"), False, LabelAction.SKIP),
        (CurrentLabel("c", manual=True), False, LabelAction.SKIP),
        (CurrentLabel("h"), False, LabelAction.KEEP_HIGHER),
        (CurrentLabel("h", manual=True), True, LabelAction.KEEP_HIGHER),  # never a downgrade, even if allowed
        (CurrentLabel("g"), False, LabelAction.APPLY),
        (CurrentLabel("g", manual=True), False, LabelAction.SKIP),
        (CurrentLabel("g", manual=True), True, LabelAction.APPLY),
        (CurrentLabel("unknown"), False, LabelAction.SKIP),
    ],
)
def test_label_actions(current, override_manual, action):
    got, reason = decide_label_action(CONFIDENTIAL, current, LABELS, override_manual=override_manual)
    assert got == action
    assert reason


def test_unlabeled_category_is_skipped_whatever_the_current_label():
    assert decide_label_action(None, None, LABELS, override_manual=False)[0] == LabelAction.SKIP
    assert decide_label_action(None, CurrentLabel("p"), LABELS, override_manual=True)[0] == LabelAction.SKIP
