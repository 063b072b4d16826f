"""The tables. Times are aware UTC (see hotline.db.UTCDateTime); shown in Asia/Shanghai."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    event,
    inspect,
    text,
)
from sqlmodel import Field, SQLModel

from hotline.crypto import Sealed, SealedJSON, keyring_of
from hotline.db import UTCDateTime

ROLES = ("agent", "handler", "leader", "supervisor", "admin", "editor", "integration")
DEPARTMENT_ROLES = ("handler", "leader")
# An outside platform's system account (互联互通): API tokens only, never the pages.
INTEGRATION = "integration"
# The source of the tickets the centre logs itself (agents, Open311); an integration
# account's tickets carry its own source instead.
OWN_SOURCE = "hotline"
# An integration account's source: lowercase letters, digits, '-' and '_'.
SOURCE_PATTERN = r"^[a-z0-9_\-]{1,32}$"
TICKET_TYPES = ("consultation", "complaint", "help", "suggestion", "report", "praise")
URGENCIES = ("normal", "urgent", "critical")
CHANNELS = ("phone", "web", "app", "wechat", "email", "city", "api")
# 知识库: an article's kind (材料性质) and its lifecycle.
ARTICLE_KINDS = ("办事指南", "政策法规", "热点问答", "常见问题", "通知公告")
ARTICLE_STATUSES = ("draft", "under_review", "published", "retired")
# Why an agent or a citizen flags an article (反馈): label of each reason.
FLAG_REASONS = {"unhelpful": "没有帮助", "outdated": "内容过时", "wrong": "内容有误"}
# Who asked a question the knowledge base could not answer (知识缺口).
GAP_SOURCES = ("agent", "assistant")


def _time(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


class Department(SQLModel, table=True):
    __tablename__ = "departments"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=100)
    active: bool = True
    created_at: datetime = Field(sa_type=UTCDateTime)
    # 统一社会信用代码, sent with its ratings to the national rating system (好差评).
    org_code: str | None = Field(default=None, max_length=18)
    # A community (社区) names its street office (街道): the street may pass it tickets
    # (二级派单, docs/workflow.md). None: a department the centre dispatches to.
    parent_id: int | None = Field(
        default=None, index=True, sa_column_args=[ForeignKey("departments.id", name="fk_departments_parent_id")]
    )


class DistrictSettings(SQLModel, table=True):
    """The district's own settings: one row (id 1), absent until someone sets them."""

    __tablename__ = "district_settings"
    __table_args__ = (CheckConstraint("id = 1", name="ck_district_settings_one_row"),)

    id: int = Field(default=1, primary_key=True)
    name: str | None = Field(default=None, max_length=50)
    # 行政区划代码: 12 digits.
    region_code: str | None = Field(default=None, max_length=12)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class User(SQLModel, table=True):
    __tablename__ = "users"
    # Usernames are unique whatever their case: "Agent1" cannot join "agent1" (and sign-in
    # matches a name case-insensitively). Names are ASCII (hotline.directory.USERNAME), so
    # lower() is the same on SQLite and PostgreSQL.
    __table_args__ = (Index("uq_users_username_lower", text("lower(username)"), unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    display_name: str | None = Field(default=None, max_length=100)
    role: str = Field(max_length=16)
    department_id: int | None = Field(default=None, foreign_key="departments.id", index=True)
    # An integration account's platform (city12345, haochaping…); None for people.
    source: str | None = Field(default=None, max_length=32)
    password_hash: str = Field(max_length=255)
    active: bool = True
    created_at: datetime = Field(sa_type=UTCDateTime)
    # Notices made before this time count as read for this user ("mark all as read"; for a
    # new user, the department's earlier notices are not theirs to read).
    notices_read_before: datetime | None = _time()
    # The password was set by someone else (an administrator, the command line): the user
    # must choose their own at the next sign-in before any other page opens.
    must_change_password: bool = False


class ApiToken(SQLModel, table=True):
    """An API token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = _time()


class Category(SQLModel, table=True):
    """A node of the category tree (问题分类); its department is the default routing."""

    __tablename__ = "categories"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=100)
    parent_id: int | None = Field(default=None, foreign_key="categories.id", index=True)
    department_id: int | None = Field(default=None, foreign_key="departments.id")
    # The workflow this category's tickets follow; None inherits from the parent.
    workflow: str | None = Field(default=None, max_length=40)
    active: bool = True


class RoutingRule(SQLModel, table=True):
    """Category and place to department (按责转办); the most specific match wins."""

    __tablename__ = "routing_rules"

    id: int | None = Field(default=None, primary_key=True)
    category_id: int | None = Field(default=None, foreign_key="categories.id", index=True)
    street: str | None = Field(default=None, max_length=50)
    community: str | None = Field(default=None, max_length=50)
    department_id: int = Field(foreign_key="departments.id")
    priority: int = 0
    active: bool = True


# A routing rule's priority: a small whole number (the higher wins among rules as specific).
MAX_RULE_PRIORITY = 9999


class Ticket(SQLModel, table=True):
    """A ticket (工单). Only the workflow gateway writes `state`."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_department_state", "main_department_id", "state"),
        Index("ix_tickets_state_created", "state", "created_at"),
        Index("ix_tickets_place", "street", "community", "created_at"),
        # Few tickets are marked unreasonable; the indicators leave those few out.
        Index("ix_tickets_unreasonable", "unreasonable"),
        # A platform's own id names one ticket of that platform (creating twice returns it).
        UniqueConstraint("source", "external_id", name="uq_tickets_source_external_id"),
        # A merged line's tickets (12315, 12333…), counted apart, by period.
        Index("ix_tickets_line_created", "line", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=20, unique=True)
    # Where the ticket came from: OWN_SOURCE, or the integration account's source.
    source: str = Field(default=OWN_SOURCE, max_length=32, sa_column_kwargs={"server_default": OWN_SOURCE})
    external_id: str | None = Field(default=None, max_length=64)
    # What an outside platform sent that the district does not know (a category, a street
    # or community), kept as sent for the agent who dispatches the ticket.
    source_details: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    workflow: str = Field(max_length=40)
    # The hotline number it came in on (一个号码): 12345, or a merged line such as 12315
    # (hotline.workflow.lines).
    line: str = Field(default="12345", max_length=20, sa_column_kwargs={"server_default": "12345"})
    type: str = Field(max_length=16)
    category_id: int | None = Field(default=None, foreign_key="categories.id", index=True)
    urgency: str = Field(default="normal", max_length=10)
    channel: str = Field(default="phone", max_length=16)
    # Sealed at rest (hotline.crypto): looked up by the keyed hashes beside them, which
    # hotline.crypto.caller_hashes fills whenever the name or the phone is written.
    caller_name: str | None = Field(default=None, sa_type=Sealed("tickets.caller_name"))
    caller_phone: str | None = Field(default=None, sa_type=Sealed("tickets.caller_phone"))
    caller_phone_hash: str | None = Field(default=None, max_length=32, index=True)
    # The phone's last four digits (the search by a phone's last digits).
    caller_tail_hash: str | None = Field(default=None, max_length=32, index=True)
    caller_name_hash: str | None = Field(default=None, max_length=32, index=True)
    confidential: bool = False
    anonymous: bool = False
    reply_wanted: bool = True
    title: str = Field(max_length=200)
    content: str = Field(sa_type=Text)
    street: str | None = Field(default=None, max_length=50)
    community: str | None = Field(default=None, max_length=50)
    address: str | None = Field(default=None, max_length=200)
    lat: float | None = None
    lng: float | None = None

    state: str = Field(max_length=20)
    version: int = 1
    main_department_id: int | None = Field(default=None, foreign_key="departments.id")
    dispatch_count: int = 0
    # Set on the third dispatch: the centre designates the department, no more returns.
    designated: bool = False
    # The state a pending return came from (reject_return goes back there).
    return_from_state: str | None = Field(default=None, max_length=20)
    master_id: int | None = Field(default=None, foreign_key="tickets.id")
    rehandle_count: int = 0
    answer: str | None = Field(default=None, sa_type=Text)
    # The knowledge-base article a direct answer (直接办结) was given from.
    article_id: int | None = Field(
        default=None, index=True, sa_column_args=[ForeignKey("articles.id", name="fk_tickets_article_id")]
    )
    result: str | None = Field(default=None, sa_type=Text)
    close_reason: str | None = Field(default=None, max_length=32)
    created_by_id: int | None = Field(default=None, foreign_key="users.id")

    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    dispatched_at: datetime | None = _time()
    signed_at: datetime | None = _time()
    replied_at: datetime | None = _time()
    closed_at: datetime | None = _time()

    # Clocks (时限); hotline.deadlines.sla computes them from the inputs below, so they can be
    # recomputed at any time (e.g. when a year's holiday data arrives).
    sign_by: datetime | None = _time()
    handle_by: datetime | None = _time()
    callback_by: datetime | None = _time()
    deadlines_provisional: bool = False
    # When the handling clock started: the dispatch, or the last rehandling.
    handle_started_at: datetime | None = _time()
    callback_started_at: datetime | None = _time()
    extension_days: int = 0
    # Time the handling clock stood still (suspensions), in working or natural seconds
    # as the handle limit runs.
    suspended_seconds: float = 0.0
    suspended_at: datetime | None = _time()
    # The deadline the state makes count now (sign_by, handle_by or callback_by), its
    # kind, and when it turns yellow (预警).
    due_at: datetime | None = _time(index=True)
    due_kind: str | None = Field(default=None, max_length=10)
    warn_at: datetime | None = _time()
    # Steps of the escalation ladder done for the current deadline (see sla.LADDER).
    escalation_step: int = 0
    # The next time the scheduler must look at this ticket; indexed so a sweep reads
    # only what is due, never the open backlog.
    next_due_at: datetime | None = _time(index=True)
    # Evaluation (评价反馈): the citizen's rating link went out; the callback attempts ran out.
    invitation_sent_at: datetime | None = _time()
    callbacks_exhausted_at: datetime | None = _time()
    # Marked an unreasonable request (不合理诉求) by the centre: it leaves the statistics.
    unreasonable: bool = False
    # Events published about this ticket so far (the last outbox `sequence`).
    event_sequence: int = 0


# The assignments whose facts performance management counts for their department: the main
# department's, and a community's that its street office passed the ticket to (二级派单).
COUNTED_ROLES = ("main", "sub")


class Assignment(SQLModel, table=True):
    """One department's part in a ticket: the main department or a co-handler (协办)."""

    __tablename__ = "assignments"
    __table_args__ = (
        Index("ix_assignments_department_ticket", "department_id", "ticket_id"),
        Index("ix_assignments_role_dispatched", "role", "dispatched_at"),
        # The indicators' ranges: main assignments by deadline and by first reply.
        Index("ix_assignments_role_handle_by", "role", "handle_by"),
        Index("ix_assignments_role_first_replied", "role", "first_replied_at"),
        Index("ix_assignments_department_role_status", "department_id", "role", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    department_id: int = Field(foreign_key="departments.id")
    role: str = Field(max_length=8)  # main | co | sub (a community the street passed it to)
    status: str = Field(max_length=12)  # dispatched | signed | replied | withdrawn
    dispatched_at: datetime = Field(sa_type=UTCDateTime)
    signed_at: datetime | None = _time()
    signed_by_id: int | None = Field(default=None, foreign_key="users.id")
    replied_at: datetime | None = _time()
    replied_by_id: int | None = Field(default=None, foreign_key="users.id")
    result: str | None = Field(default=None, sa_type=Text)
    # The facts performance management counts (绩效管理), kept by the gateway as they
    # happen, so the indicators are one GROUP BY over this table (hotline.indicators.stats).
    sign_by: datetime | None = _time()
    signed_on_time: bool | None = None
    returned: bool = False
    handle_by: datetime | None = _time()
    first_replied_at: datetime | None = _time()
    replied_on_time: bool | None = None
    rehandles: int = 0
    # A community's part (二级派单): the steps of its own ladder done for its running clock, and
    # when the scheduler next looks at it (indexed: a sweep reads only the parts that are due).
    escalation_step: int = 0
    next_due_at: datetime | None = _time(index=True)


class Approval(SQLModel, table=True):
    """A request that the centre decides: a return, an extension or a suspension."""

    __tablename__ = "approvals"
    __table_args__ = (Index("ix_approvals_kind_status", "kind", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    kind: str = Field(max_length=12)  # return | extension | suspension
    status: str = Field(default="pending", max_length=10)  # pending | approved | rejected
    department_id: int | None = Field(default=None, foreign_key="departments.id")
    requested_by_id: int | None = Field(default=None, foreign_key="users.id")
    requested_at: datetime = Field(sa_type=UTCDateTime)
    reason: str = Field(sa_type=Text)
    reason_code: str | None = Field(default=None, max_length=32)
    basis: str | None = Field(default=None, sa_type=Text)
    days: int | None = None
    from_state: str | None = Field(default=None, max_length=20)
    decided_by_id: int | None = Field(default=None, foreign_key="users.id")
    decided_at: datetime | None = _time()
    decision_reason: str | None = Field(default=None, sa_type=Text)


class TicketEvent(SQLModel, table=True):
    """The history: every change and every action, who, when, from, to, why; each row sealed
    into its ticket's hash chain (hotline.audit)."""

    __tablename__ = "ticket_events"
    # A ticket's rows in order: its history, its chain's last link, the chain checked ticket by ticket.
    __table_args__ = (Index("ix_ticket_events_ticket_id_id", "ticket_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id")
    event: str = Field(max_length=32)
    actor_id: int | None = Field(default=None, foreign_key="users.id")
    actor_name: str = Field(max_length=64)
    actor_role: str = Field(max_length=16)
    from_state: str | None = Field(default=None, max_length=20)
    to_state: str = Field(max_length=20)
    at: datetime = Field(sa_type=UTCDateTime)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # SHA-256 of the ticket's previous chain and this row's content (hotline.audit.seal).
    chain: str = Field(default="", max_length=64)


class Callback(SQLModel, table=True):
    """One callback attempt (回访), by an agent or through the citizen's rating link."""

    __tablename__ = "callbacks"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    attempt: int
    reached: bool
    solved: bool | None = None
    rating: int | None = None  # 1..5, 5 is 非常满意
    comment: str | None = Field(default=None, sa_type=Text)
    # agent | link (the citizen's rating link) | external (the rating system, 好差评)
    source: str = Field(default="agent", max_length=8)
    # A rating from the rating system: its channel (评价渠道) and its own id, unique, so
    # that the same rating sent again is recorded once.
    channel: str | None = Field(default=None, max_length=32)
    external_id: str | None = Field(default=None, max_length=64, unique=True)
    by_id: int | None = Field(default=None, foreign_key="users.id")
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    # The department whose handling was rated (the main department at the time).
    department_id: int | None = Field(default=None, foreign_key="departments.id", index=True)
    # Overturned on appeal (申诉复核): the rating leaves the statistics.
    overturned: bool = False


class TicketCounter(SQLModel, table=True):
    """The daily sequence behind readable ticket numbers."""

    __tablename__ = "ticket_counters"

    day: str = Field(primary_key=True, max_length=8)
    value: int = 0


class CalendarDay(SQLModel, table=True):
    """A day that differs from Mon-Fri: a holiday (working=False) or a make-up day."""

    __tablename__ = "calendar_days"

    day: date = Field(primary_key=True)
    working: bool
    name: str | None = Field(default=None, max_length=50)


class CalendarYear(SQLModel, table=True):
    """A year whose official holiday data is loaded."""

    __tablename__ = "calendar_years"

    year: int = Field(primary_key=True)
    source: str = Field(max_length=32)
    loaded_at: datetime = Field(sa_type=UTCDateTime)


class Escalation(SQLModel, table=True):
    """One step of the escalation ladder for one deadline of one ticket; never twice."""

    __tablename__ = "escalations"
    __table_args__ = (
        UniqueConstraint("ticket_id", "deadline_kind", "deadline_at", "step", name="uq_escalation_step"),
        Index("ix_escalations_step_at", "step", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    department_id: int | None = Field(default=None, foreign_key="departments.id")
    deadline_kind: str = Field(max_length=10)  # sign | handle; a community's: sub_sign | sub_handle
    deadline_at: datetime = Field(sa_type=UTCDateTime)
    step: str = Field(max_length=10)  # warn | urge | supervise | report
    at: datetime = Field(sa_type=UTCDateTime)
    by_scheduler: bool = True


class SupervisionOrder(SQLModel, table=True):
    """A supervision order (督办单) to a department leader, who must answer it."""

    __tablename__ = "supervision_orders"
    __table_args__ = (Index("ix_supervision_department_status", "department_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    department_id: int = Field(foreign_key="departments.id")
    issued_at: datetime = Field(sa_type=UTCDateTime)
    issued_by_id: int | None = Field(default=None, foreign_key="users.id")
    message: str = Field(sa_type=Text)
    status: str = Field(default="open", max_length=10)  # open | answered | lapsed (ticket finished unanswered)
    answered_at: datetime | None = _time()
    answered_by_id: int | None = Field(default=None, foreign_key="users.id")
    answer: str | None = Field(default=None, sa_type=Text)


class Notification(SQLModel, table=True):
    """An in-app notice: to one user, to a role of a department, or to a role."""

    __tablename__ = "notifications"
    __table_args__ = (
        # Each way a notice is addressed, newest last: a user's unread ones are index ranges.
        Index("ix_notifications_department_role_created", "department_id", "role", "created_at"),
        Index("ix_notifications_user_created", "user_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int | None = Field(default=None, foreign_key="users.id")
    department_id: int | None = Field(default=None, foreign_key="departments.id")
    role: str | None = Field(default=None, max_length=16)
    kind: str = Field(max_length=24)
    ticket_id: int | None = Field(default=None, foreign_key="tickets.id", index=True)
    title: str = Field(max_length=200)
    body: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)


class NotificationRead(SQLModel, table=True):
    """One user has read one notice (a notice to a department is read by each of its people)."""

    __tablename__ = "notification_reads"

    user_id: int = Field(foreign_key="users.id", primary_key=True)
    notification_id: int = Field(foreign_key="notifications.id", primary_key=True)
    read_at: datetime = Field(sa_type=UTCDateTime)


class OutboxMessage(SQLModel, table=True):
    """An event for other systems (互联互通), written in the same transaction as the change
    that caused it (hotline.integration.events.publish): a history row, a notice, a rating.

    `sequence` counts a ticket's events 1, 2, 3... with no gap; `departments` (",3,7,") and
    `source` are who the event concerns, for scoped subscriptions and the pull feed.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        # The events not handed to the subscriptions yet: few, whatever the table's size.
        Index(
            "ix_outbox_not_fanned_out",
            "id",
            sqlite_where=text("fanned_out = 0"),
            postgresql_where=text("NOT fanned_out"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    # The event's id outside (`webhook-id`): the same on every retry and replay.
    uid: str = Field(max_length=40, unique=True)
    topic: str = Field(max_length=40, index=True)
    ticket_id: int | None = Field(
        default=None, index=True, sa_column_args=[ForeignKey("tickets.id", name="fk_outbox_ticket_id")]
    )
    ticket_number: str | None = Field(default=None, max_length=20)
    sequence: int | None = None
    departments: str = Field(default="", max_length=200)
    source: str | None = Field(default=None, max_length=32)
    # Sealed at rest (hotline.crypto): an event's ticket carries the caller.
    payload: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(SealedJSON("outbox.payload"), nullable=False)
    )
    # When it happened (the change's time) and when it was written (the clock on the wall:
    # the pull feed holds back the last moments on PostgreSQL, whose commits may land out of id order).
    created_at: datetime = Field(sa_type=UTCDateTime)
    recorded_at: datetime = Field(sa_type=UTCDateTime)
    # Handed to the subscriptions it concerns yet (one delivery row each)?
    fanned_out: bool = False


class Subscription(SQLModel, table=True):
    """An outside system that receives events by webhook: everything, or one department's
    tickets, or one source's; signed with its secret (Standard Webhooks)."""

    __tablename__ = "subscriptions"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    url: str = Field(max_length=500)
    topics: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    department_id: int | None = Field(default=None, foreign_key="departments.id")
    source: str | None = Field(default=None, max_length=32)
    enabled: bool = True
    # Why it was turned off (by an administrator, or the receiver answered 410 Gone).
    disabled_reason: str | None = Field(default=None, max_length=200)
    secret: str = Field(max_length=80)
    # After a rotation the old secret signs too, until `previous_secret_until`.
    previous_secret: str | None = Field(default=None, max_length=80)
    previous_secret_until: datetime | None = _time()
    created_by_id: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class Delivery(SQLModel, table=True):
    """One event on its way to one subscription: pending (with the time of its next try),
    delivered or dead. A delivery process claims it with a lease before it sends."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id", name="uq_delivery_event"),
        # What is due: pending rows by their next try.
        Index("ix_deliveries_due", "status", "next_attempt_at", "id"),
        # The rows before this one for the same ticket and subscription (order per ticket).
        Index("ix_deliveries_ticket_order", "subscription_id", "ticket_id", "sequence"),
        # The last day's attempts, for each subscription's success rate.
        Index("ix_deliveries_last_attempt", "last_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="subscriptions.id")
    event_id: int = Field(foreign_key="outbox.id", index=True)
    ticket_id: int | None = None
    sequence: int | None = None
    status: str = Field(default="pending", max_length=10)  # pending | delivered | dead
    attempts: int = 0
    next_attempt_at: datetime | None = _time()
    lease_owner: str | None = Field(default=None, max_length=40)
    lease_until: datetime | None = _time()
    last_status: int | None = None
    last_error: str | None = Field(default=None, max_length=300)
    last_attempt_at: datetime | None = _time()
    delivered_at: datetime | None = _time()
    created_at: datetime = Field(sa_type=UTCDateTime)


class WebSession(SQLModel, table=True):
    """A signed-in browser: the cookie holds a random token, the table its SHA-256."""

    __tablename__ = "web_sessions"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    # The last request seen, to the minute (idle time-out); where the browser signed in from.
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
    address: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=200)


class Place(SQLModel, table=True):
    """A street (街道) or a community (社区) within a street: the district's places."""

    __tablename__ = "places"
    __table_args__ = (UniqueConstraint("street", "community", name="uq_place"),)

    id: int | None = Field(default=None, primary_key=True)
    street: str = Field(max_length=50, index=True)
    # None: the street itself.
    community: str | None = Field(default=None, max_length=50)
    active: bool = True


class RatingInvitation(SQLModel, table=True):
    """A one-use, expiring link that lets the citizen rate the handling (好差评)."""

    __tablename__ = "rating_invitations"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = _time()
    revoked_at: datetime | None = _time()
    sent_by_id: int | None = Field(default=None, foreign_key="users.id")
    message_id: int | None = Field(default=None, foreign_key="messages.id")


class Message(SQLModel, table=True):
    """A text message to a citizen, as handed to the message channel (and its fate)."""

    __tablename__ = "messages"

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32)
    # The citizen's number, sealed at rest (hotline.crypto).
    to: str = Field(sa_type=Sealed("messages.to"))
    body: str = Field(sa_type=Text)
    ticket_id: int | None = Field(default=None, foreign_key="tickets.id", index=True)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    status: str = Field(default="stored", max_length=12)  # stored | sent | failed
    error: str | None = Field(default=None, max_length=500)


class Rectification(SQLModel, table=True):
    """差评整改: what a department must do about a bad rating, within its limit."""

    __tablename__ = "rectifications"
    __table_args__ = (Index("ix_rectifications_department_status", "department_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    callback_id: int = Field(foreign_key="callbacks.id")
    department_id: int = Field(foreign_key="departments.id")
    # open → reported → accepted; a report sent back returns it to open.
    status: str = Field(default="open", max_length=10)
    opened_at: datetime = Field(sa_type=UTCDateTime)
    due_at: datetime = Field(sa_type=UTCDateTime)
    provisional: bool = False
    verification: str | None = Field(default=None, sa_type=Text)  # 核实情况
    measures: str | None = Field(default=None, sa_type=Text)  # 整改措施或不能整改的说明
    reported_at: datetime | None = _time()
    reported_by_id: int | None = Field(default=None, foreign_key="users.id")
    decided_at: datetime | None = _time()
    decided_by_id: int | None = Field(default=None, foreign_key="users.id")
    decision_reason: str | None = Field(default=None, sa_type=Text)
    escalation_step: int = 0
    next_due_at: datetime | None = _time(index=True)


class Appeal(SQLModel, table=True):
    """申诉复核: a department contests a rating, or asks for an unreasonable-request mark."""

    __tablename__ = "appeals"
    __table_args__ = (Index("ix_appeals_status", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    kind: str = Field(max_length=12)  # rating | unreasonable
    callback_id: int | None = Field(default=None, foreign_key="callbacks.id")
    department_id: int = Field(foreign_key="departments.id")
    grounds: str = Field(sa_type=Text)
    # pending → granted (the rating is overturned, or the ticket marked unreasonable) | refused
    status: str = Field(default="pending", max_length=12)
    requested_by_id: int | None = Field(default=None, foreign_key="users.id")
    requested_at: datetime = Field(sa_type=UTCDateTime)
    decided_by_id: int | None = Field(default=None, foreign_key="users.id")
    decided_at: datetime | None = _time()
    decision_reason: str | None = Field(default=None, sa_type=Text)


class AppSecret(SQLModel, table=True):
    """Secrets the processes of one installation share (made on first use, never in the repo)."""

    __tablename__ = "app_secrets"

    name: str = Field(primary_key=True, max_length=32)
    value: str = Field(max_length=128)
    created_at: datetime = Field(sa_type=UTCDateTime)


class SurgeAlert(SQLModel, table=True):
    """A surge (突发聚集): many tickets of one category in one community in a short time.

    One alert per surge: while it lasts the alert is updated, not raised again.
    """

    __tablename__ = "surge_alerts"
    __table_args__ = (Index("ix_surge_alerts_status", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    category_id: int | None = Field(default=None, foreign_key="categories.id")
    street: str | None = Field(default=None, max_length=50)
    community: str | None = Field(default=None, max_length=50)
    status: str = Field(default="open", max_length=8)  # open | closed
    count: int
    peak: int
    baseline: float  # the community's usual count for the category in such a window
    window_hours: float
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    closed_at: datetime | None = _time()


class Report(SQLModel, table=True):
    """A daily, weekly or monthly report, generated by the scheduler and kept."""

    __tablename__ = "reports"
    __table_args__ = (UniqueConstraint("kind", "period_start", name="uq_report_period"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=8)  # daily | weekly | monthly
    period_start: date
    period_end: date
    title: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=UTCDateTime)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class DailyTotal(SQLModel, table=True):
    """A running total behind the performance indicators: one count per local day,
    department and metric (hotline.indicators.totals). The workflow gateway adds to it in the same
    transaction as the change it counts; `hotline stats rebuild` recomputes it."""

    __tablename__ = "daily_totals"

    day: date = Field(primary_key=True)
    department_id: int = Field(foreign_key="departments.id", primary_key=True)
    metric: str = Field(primary_key=True, max_length=24)
    n: int = 0


class Article(SQLModel, table=True):
    """A knowledge-base article (知识点). The search index (`knowledge_index`, a table of
    each database's own kind, hotline.knowledge.index) follows it in the same transaction."""

    __tablename__ = "articles"
    __table_args__ = (
        # A title is unique within its issuing body (发文单位).
        UniqueConstraint("department", "title", name="uq_articles_department_title"),
        Index("ix_articles_status_public", "status", "public"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # The id in the system the article came from (a department's list, the website): upserts go by it.
    external_id: str | None = Field(default=None, max_length=64, unique=True)
    title: str = Field(max_length=128)
    body: str = Field(sa_type=Text)  # Markdown, rendered by a safe renderer
    category: str = Field(max_length=200, index=True)  # a path: 社会保障/养老保险
    keywords: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # The issuing body as given (a department's code or name), and the department it names, if any.
    department: str = Field(max_length=100)
    department_id: int | None = Field(default=None, foreign_key="departments.id", index=True)
    kind: str = Field(max_length=8)
    region: str | None = Field(default=None, max_length=100)
    valid_from: date | None = None
    valid_until: date | None = Field(default=None, index=True)
    public: bool = True
    status: str = Field(default="draft", max_length=16)
    version: int = 1
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    created_by_id: int | None = Field(default=None, foreign_key="users.id")
    updated_by_id: int | None = Field(default=None, foreign_key="users.id")
    # The consultation ticket whose answer this article was drafted from (知识回流).
    # (Created after both tables: tickets name their answering article too.)
    source_ticket_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("tickets.id", use_alter=True, name="fk_articles_source_ticket_id")),
    )
    # The last valid day its owner was warned about (warned again if the day moves).
    expiry_warned_for: date | None = None


class ArticleVersion(SQLModel, table=True):
    """Every change of an article, kept: who, when, what was done, and its fields after it."""

    __tablename__ = "article_versions"
    __table_args__ = (UniqueConstraint("article_id", "version", name="uq_article_version"),)

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="articles.id", index=True)
    version: int
    action: str = Field(max_length=16)  # create | edit | import | submit | publish | return | retire | expire
    at: datetime = Field(sa_type=UTCDateTime)
    by_id: int | None = Field(default=None, foreign_key="users.id")
    by_name: str = Field(max_length=64)
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class ArticleFlag(SQLModel, table=True):
    """An agent or a citizen found an article unhelpful, out of date or wrong; open until an
    editor resolves it."""

    __tablename__ = "article_flags"
    __table_args__ = (Index("ix_article_flags_open", "resolved_at", "article_id"),)

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="articles.id", index=True)
    reason: str = Field(max_length=16)  # a key of FLAG_REASONS
    comment: str | None = Field(default=None, max_length=500)
    source: str = Field(max_length=16)  # agent (any staff) | citizen
    by_id: int | None = Field(default=None, foreign_key="users.id")
    at: datetime = Field(sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_by_id: int | None = Field(default=None, foreign_key="users.id")


class KnowledgeGap(SQLModel, table=True):
    """A question the knowledge base had no answer for (知识缺口), counted each time it is
    asked again: the same question in other words counts as one (`key`: its words, sorted)."""

    __tablename__ = "knowledge_gaps"
    __table_args__ = (Index("ix_knowledge_gaps_open", "closed_at", "asked"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    question: str = Field(max_length=200)  # the latest wording
    asked: int = 1
    by_agents: int = 0
    by_assistant: int = 0
    first_at: datetime = Field(sa_type=UTCDateTime)
    last_at: datetime = Field(sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_by_id: int | None = Field(default=None, foreign_key="users.id")
    # The article that now answers it, if the editor named one.
    article_id: int | None = Field(default=None, foreign_key="articles.id")


class VerificationCode(SQLModel, table=True):
    """A code sent by text message to a citizen who files a matter online (网上诉求). Neither
    the phone nor the code is kept: `phone_key` and `code_hash` are HMACs with an installation
    secret, enough to find the phone's latest code and to check what is typed."""

    __tablename__ = "verification_codes"
    __table_args__ = (Index("ix_verification_codes_phone_key_created_at", "phone_key", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    phone_key: str = Field(max_length=64)
    code_hash: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    # Wrong codes typed against this one; it stops working at the limit.
    attempts: int = 0
    used_at: datetime | None = _time()


_CALLER_COLUMNS = frozenset({"caller_phone", "caller_name"})


@event.listens_for(Ticket, "before_insert")
@event.listens_for(Ticket, "before_update")
def _hash_caller(_mapper, connection, ticket: Ticket) -> None:
    """The caller's keyed hashes follow the caller's phone and name, whoever writes them."""
    state = inspect(ticket)
    # A loaded ticket whose caller was not set since (its committed values hold the columns set
    # since the load: cheaper to ask than each attribute's history, on every ticket flushed).
    if state.has_identity and not _CALLER_COLUMNS.intersection(state.committed_state):
        return
    hash_caller(connection, ticket)


def hash_caller(bind: Any, ticket: Ticket) -> None:
    """Set the ticket's keyed hashes of its caller's phone and name (the keys of `bind`)."""
    for column, value in keyring_of(bind).caller_hashes(ticket.caller_phone, ticket.caller_name).items():
        setattr(ticket, column, value)


class SchedulerLease(SQLModel, table=True):
    """Which process runs the scheduler's jobs (hotline.ops.leader): renewed by the leader
    every few seconds, taken over by another once it expires. On PostgreSQL an advisory
    lock decides, and the row only tells the others (and /readyz) who leads."""

    __tablename__ = "scheduler_leases"

    name: str = Field(primary_key=True, max_length=32)
    holder: str = Field(max_length=120)
    acquired_at: datetime = Field(sa_type=UTCDateTime)
    renewed_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class CalendarWarning(SQLModel, table=True):
    """A year whose missing holiday data the administrators were told of (once per year:
    the scheduler's calendar check reads this flag by its key, not the notices)."""

    __tablename__ = "calendar_warnings"

    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    warned_at: datetime = Field(sa_type=UTCDateTime)


class SurgeCount(SQLModel, table=True):
    """Tickets created per local day, category and community (hotline.indicators.analysis):
    the surge check's baseline is a sum over these, not a count over weeks of tickets. A day
    is counted once, when it has left the surge window; `category_id` 0 and `street` ''
    stand for none."""

    __tablename__ = "surge_counts"
    __table_args__ = (Index("ix_surge_counts_key", "street", "community", "category_id", "day"),)

    day: date = Field(primary_key=True)
    category_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    street: str = Field(primary_key=True, max_length=50)
    community: str = Field(primary_key=True, max_length=50)
    n: int


class AuditRecord(SQLModel, table=True):
    """The security audit trail (安全审计): a sign-in, a sign-out, or a change an administrator
    (or an editor, the command line, the system) made, with who, from where, what and the
    changed fields before and after; each row sealed into one hash chain (hotline.audit_log).
    Never deleted by the application."""

    __tablename__ = "audit_records"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    actor_id: int | None = None
    actor_name: str = Field(max_length=64, index=True)
    actor_role: str = Field(max_length=16)
    address: str | None = Field(default=None, max_length=64)
    action: str = Field(max_length=40, index=True)
    target_type: str = Field(max_length=24)
    target_id: str | None = Field(default=None, max_length=64)
    target_label: str | None = Field(default=None, max_length=200)
    outcome: str = Field(default="ok", max_length=8)  # ok | failed | refused
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # SHA-256 of the previous record's chain and this record's content.
    chain: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """The audit trail's last link and length (one row, id 1): writers lock it, one after
    another, and the check finds a trail cut short at its end."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="ck_audit_head_one_row"),)

    id: int = Field(default=1, primary_key=True)
    chain: str = Field(max_length=64)
    records: int = 0


ATTACHMENT_KINDS = ("photo", "proof", "document", "recording")


class Attachment(SQLModel, table=True):
    """A file of a ticket (附件): its bytes in the attachment store under `storage_key` (a random
    key, never the sender's name), or only a `reference` to a file elsewhere (an Open311
    `media_url`, a recording kept by the telephone system). `removed_at`: the retention rule
    deleted the bytes; the row stays, as the history names it."""

    __tablename__ = "attachments"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id", index=True)
    kind: str = Field(max_length=16)
    name: str = Field(max_length=200)
    content_type: str = Field(max_length=100)
    size: int = 0
    sha256: str | None = Field(default=None, max_length=64)
    storage_key: str | None = Field(default=None, max_length=32, unique=True)
    thumbnail_key: str | None = Field(default=None, max_length=32, unique=True)
    reference: str | None = Field(default=None, max_length=500)
    created_by_id: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(sa_type=UTCDateTime)
    removed_at: datetime | None = _time()


class Call(SQLModel, table=True):
    """An incoming call (来电) the telephone system reported, shown on its agent's workbench
    (来电弹屏); `ticket_id`: the ticket the agent logged from it. One row per call id of a source."""

    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("source", "call_id", name="uq_calls_source_call_id"),
        # An agent's workbench asks for its calls newer than the last it showed.
        Index("ix_calls_agent_id_id", "agent_id", "id"),
        # The supervisors' call analysis reads a period's calls.
        Index("ix_calls_started_at", "started_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32)
    call_id: str = Field(max_length=64)
    # Sealed at rest (hotline.crypto), like the tickets' callers.
    caller_phone: str = Field(sa_type=Sealed("calls.caller_phone"))
    agent_id: int = Field(foreign_key="users.id")
    # The hotline number the citizen dialled (12345, or a merged line such as 12315).
    dialled: str | None = Field(default=None, max_length=20)
    started_at: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    ticket_id: int | None = Field(default=None, foreign_key="tickets.id", index=True)
