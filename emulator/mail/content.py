"""Subjects and bodies of seeded mail, derived on demand from the thread and the message's place in it.

Nothing here is stored per message: the same (thread, index) always renders the same text, so both copies of a
message (the sender's Sent Items, the recipient's Inbox) agree, and a 100k-message tenant holds no body strings.
The identifiers a body contains are chosen at seed time as a bitmask (`Message.idmask`); their values are drawn
here from a generator seeded by (thread, index), so `identifiers_in` (the ground truth) and the body always match.
"""

from __future__ import annotations

import hashlib
import html
import random

from emulator.mail.store import Message, Thread
from emulator.seed import fake_cccd, fake_mst

MST = 1  # the customer's own tax code (valid check digit)
MST_INVALID = 2  # a decoy: looks like a tax code, wrong check digit
CCCD = 4  # a citizen ID number
PHONE = 8  # the contact's mobile number, in 0... or +84 form
CONTRACT = 16  # a contract number such as HĐ-2024/0153
IDENTIFIER_KINDS = {MST: "mst", MST_INVALID: "mst_invalid", CCCD: "cccd", PHONE: "phone", CONTRACT: "contract"}

# Customer conversation topics: (Vietnamese subject, English subject, Vietnamese lines, English lines).
CUSTOMER_TOPICS: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "Báo giá gia hạn {product}",
        "Renewal quote for {product}",
        ("Cảm ơn anh/chị đã quan tâm đến việc gia hạn {product}.", "Chúng tôi gửi kèm báo giá cho kỳ tiếp theo."),
        ("Thank you for your interest in renewing {product}.", "Please find our quote for the next term attached."),
    ),
    (
        "Hợp đồng dịch vụ {product}",
        "Service agreement for {product}",
        ("Bên em gửi anh/chị bản hợp đồng dịch vụ {product} để xem xét.", "Anh/chị vui lòng ký và gửi lại giúp em."),
        ("Please find the {product} service agreement for your review.", "Kindly sign and return a copy to us."),
    ),
    (
        "Yêu cầu hỗ trợ kỹ thuật - {product}",
        "Support request: {product}",
        ("Người dùng bên công ty không đăng nhập được vào {product}.", "Nhờ anh/chị kiểm tra giúp cấu hình tài khoản."),
        ("Some of our users cannot sign in to {product}.", "Could you check the account configuration for us?"),
    ),
    (
        "Hóa đơn GTGT dịch vụ {product}",
        "VAT invoice for {product}",
        ("Chúng tôi đã xuất hóa đơn GTGT cho dịch vụ {product}.", "Vui lòng kiểm tra thông tin xuất hóa đơn bên dưới."),
        ("We have issued the VAT invoice for {product}.", "Please check the invoicing details below."),
    ),
    (
        "Xác nhận đơn hàng {product}",
        "Order confirmation: {product}",
        ("Đơn hàng {product} của quý công ty đã được xác nhận.", "Giấy phép sẽ được kích hoạt trong vòng 24 giờ."),
        ("Your order for {product} is confirmed.", "The licences will be active within 24 hours."),
    ),
    (
        "Cấp tài khoản {product} cho nhân viên mới",
        "New staff accounts on {product}",
        (
            "Công ty cần thêm 3 tài khoản {product} cho nhân viên mới.",
            "Danh sách nhân viên em gửi trong file đính kèm.",
        ),
        ("We need three more {product} accounts for new staff.", "The list of new starters is attached."),
    ),
)
INTERNAL_TOPICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Họp giao ban tuần {n}", ("Lịch họp giao ban tuần này vào 9h sáng thứ Hai.", "Mọi người chuẩn bị báo cáo ngắn.")),
    ("Báo cáo doanh số tháng {n}", ("Em gửi anh chị báo cáo doanh số tổng hợp.", "Số liệu chi tiết nằm trong file.")),
    ("Lịch trực hỗ trợ khách hàng", ("Lịch trực tuần tới đã cập nhật trên SharePoint.", "Ai cần đổi ca báo lại nhé.")),
    ("Đào tạo nội bộ: bảo mật Microsoft 365", ("Buổi đào tạo bảo mật sẽ diễn ra chiều thứ Năm.", "Vui lòng có mặt.")),
)
REPLY_LINES = {
    True: ("Cảm ơn anh/chị đã phản hồi.", "Bên em đã nhận được thông tin và sẽ xử lý trong hôm nay."),
    False: ("Thank you for getting back to us.", "We have received your message and will handle it today."),
}
NEWSLETTER_SENDER = ("Bản tin Công nghệ", "news@bantin-congnghe.example")
NEWSLETTER_LINES = (
    "Tổng hợp tin tức công nghệ nổi bật trong tuần.",
    "Đăng ký hội thảo trực tuyến về chuyển đổi số cho doanh nghiệp vừa và nhỏ.",
    "Để ngừng nhận bản tin, bấm vào liên kết hủy đăng ký ở cuối thư.",
)


def _rng(thread: Thread, index: int) -> random.Random:
    return random.Random(f"mail:{thread.key}:{index}")


def subject_of(message: Message) -> str:
    if message.own is not None:
        return message.own.subject
    thread = message.thread
    assert thread is not None
    if message.index == 0 or thread.kind == "newsletter":
        return thread.subject
    return f"RE: {thread.subject}"


def _phone_forms(phone: str, international: bool) -> str:
    digits = phone.replace(" ", "")
    if international and digits.startswith("0"):
        rest = digits[1:]
        return f"+84 {rest[:2]} {rest[2:5]} {rest[5:]}"
    return phone


def contract_no(thread: Thread) -> str:
    """The thread's contract number (one per conversation), e.g. HĐ-2024/0153."""
    if thread.contract_no:
        return thread.contract_no
    rng = random.Random(f"contract:{thread.key}")
    return f"HĐ-{rng.randrange(2019, 2026)}/{rng.randrange(1, 10_000):04d}"


def identifiers_in(message: Message) -> tuple[tuple[str, str], ...]:
    """The (kind, value) identifiers the derived body contains, in the order they appear."""
    thread = message.thread
    if thread is None or not message.idmask:
        return ()
    rng = _rng(thread, message.index)
    found: list[tuple[str, str]] = []
    # Draw every value in a fixed order whether or not it is used, so each stays stable per message.
    decoy = fake_mst(rng, valid=False)
    cccd = fake_cccd(rng)
    international = rng.random() < 0.5
    contract = contract_no(thread)
    if message.idmask & MST and thread.tax_code:
        found.append(("mst", thread.tax_code))
    if message.idmask & CONTRACT:
        found.append(("contract", contract))
    if message.idmask & CCCD:
        found.append(("cccd", cccd))
    if message.idmask & PHONE and thread.phone:
        found.append(("phone", _phone_forms(thread.phone, international)))
    if message.idmask & MST_INVALID:
        found.append(("mst_invalid", decoy))
    return tuple(found)


def _identifier_line(kind: str, value: str, vietnamese: bool) -> str:
    vi = {
        "mst": f"Mã số thuế (MST) của công ty: {value}",
        "contract": f"Số hợp đồng: {value}",
        "cccd": f"Số CCCD của người đại diện theo pháp luật: {value}",
        "phone": f"Số điện thoại liên hệ: {value}",
        "mst_invalid": f"Mã tham chiếu trên hệ thống cũ: {value}",
    }
    en = {
        "mst": f"Company tax code (MST): {value}",
        "contract": f"Contract no.: {value}",
        "cccd": f"Legal representative's citizen ID (CCCD): {value}",
        "phone": f"Contact phone: {value}",
        "mst_invalid": f"Reference in our old system: {value}",
    }
    return (vi if vietnamese else en)[kind]


def _first_name(address: tuple[str, str]) -> str:
    name = address[0] or address[1].split("@")[0]
    return name.split()[-1]


def body_text(message: Message) -> str:
    """The plain-text body (Prefer: outlook.body-content-type="text")."""
    if message.own is not None:
        return message.own.body if message.own.body_type == "text" else _strip_html(message.own.body)
    thread = message.thread
    assert thread is not None
    recipient = message.to[0] if message.to else message.sender
    lines: list[str]
    if thread.kind == "newsletter":
        lines = ["Kính gửi quý độc giả,", "", *NEWSLETTER_LINES, "", NEWSLETTER_SENDER[0]]
    elif thread.kind == "internal":
        _, internal_lines = INTERNAL_TOPICS[thread.topic % len(INTERNAL_TOPICS)]
        lines = [f"Chào {_first_name(recipient)},", "", *internal_lines, "", "Cảm ơn,", message.sender[0]]
    else:
        vietnamese = thread.language == "vi"
        _, _, vi_lines, en_lines = CUSTOMER_TOPICS[thread.topic % len(CUSTOMER_TOPICS)]
        topic_lines = [line.format(product=thread.product) for line in (vi_lines if vietnamese else en_lines)]
        if message.index:
            topic_lines[0] = REPLY_LINES[vietnamese][message.index % 2]
        greeting = f"Kính gửi anh/chị {_first_name(recipient)}," if vietnamese else f"Dear {recipient[0]},"
        closing = "Trân trọng," if vietnamese else "Best regards,"
        details = [_identifier_line(kind, value, vietnamese) for kind, value in identifiers_in(message)]
        lines = [greeting, "", topic_lines[0], *details, topic_lines[1], "", closing, message.sender[0]]
    return "\r\n".join(lines)


def body_html(message: Message) -> str:
    """The HTML body, wrapped the way Exchange returns it."""
    if message.own is not None and message.own.body_type == "html":
        return message.own.body
    paragraphs = "\r\n".join(f"<p>{html.escape(line)}</p>" for line in body_text(message).split("\r\n") if line)
    return (
        '<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n</head>\r\n'
        f"<body>\r\n{paragraphs}\r\n</body>\r\n</html>\r\n"
    )


def body_preview(message: Message) -> str:
    return body_text(message)[:255]


def _strip_html(markup: str) -> str:
    out: list[str] = []
    inside = False
    for ch in markup:
        if ch == "<":
            inside = True
        elif ch == ">":
            inside = False
        elif not inside:
            out.append(ch)
    return html.unescape("".join(out)).strip()


def internet_message_id(message: Message) -> str:
    if message.own is not None:
        return message.own.internet_message_id
    thread = message.thread
    assert thread is not None
    digest = hashlib.blake2b(f"imid:{thread.key}:{message.index}".encode(), digest_size=12).hexdigest().upper()
    domain = message.sender[1].rsplit("@", 1)[-1]
    return f"<{digest}@{domain}>"


def conversation_id(message: Message) -> str:
    if message.own is not None:
        return message.own.conversation_id
    assert message.thread is not None
    return message.thread.conversation_id
