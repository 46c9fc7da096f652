"""`GraphConnector`: every Graph operation Steward uses, over one throttle-aware transport.

Build one per process, in the service's lifespan, around the process's GraphClient and ThrottleBudget:

    budget = ThrottleBudget(sharepoint_ru_limits=[(2_500, 60)])
    graph = GraphConnector(client, budget=budget, user_agent=steward_user_agent("Contoso", "0.1.0"),
                           allowed_hosts=settings.graph_allowed_hosts, park_store=db_park_store,
                           token_refresh=credential.force_refresh)
    async for page in graph.mail.message_delta(user_id, "inbox", cursor=stored): ...
"""

import random
from collections.abc import Awaitable, Callable, Sequence

from connectors.graph.batch import BatchExecutor
from connectors.graph.budget import ThrottleBudget
from connectors.graph.client import GraphClient
from connectors.graph.clock import Clock
from connectors.graph.directory import DirectoryOperations
from connectors.graph.files import FileOperations
from connectors.graph.labels import LabelOperations, MonitorPolicy
from connectors.graph.mail import MailOperations
from connectors.graph.park import ParkStore
from connectors.graph.posture import PostureOperations
from connectors.graph.subscriptions import SubscriptionOperations
from connectors.graph.transport import GraphTransport, RetryPolicy

# The visible part of a mail label: "Steward: Confidential" in the message's categories.
DEFAULT_LABEL_CATEGORY_PREFIX = "Steward: "


class GraphConnector:
    def __init__(
        self,
        client: GraphClient,
        *,
        budget: ThrottleBudget,
        user_agent: str,
        allowed_hosts: Sequence[str] | None = None,
        park_store: ParkStore | None = None,
        retry: RetryPolicy | None = None,
        monitor: MonitorPolicy | None = None,
        token_refresh: Callable[[], Awaitable[None]] | None = None,
        label_category_prefix: str = DEFAULT_LABEL_CATEGORY_PREFIX,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.transport = GraphTransport(
            client,
            budget=budget,
            user_agent=user_agent,
            allowed_hosts=allowed_hosts,
            park_store=park_store,
            retry=retry,
            token_refresh=token_refresh,
            clock=clock,
            rng=rng,
        )
        sdk = client.sdk
        self.budget = budget
        self.directory = DirectoryOperations(self.transport, sdk)
        self.mail = MailOperations(self.transport, sdk, label_category_prefix=label_category_prefix)
        self.files = FileOperations(self.transport, sdk)
        self.labels = LabelOperations(self.transport, sdk, monitor=monitor)
        self.subscriptions = SubscriptionOperations(self.transport, sdk)
        self.posture = PostureOperations(self.transport, sdk)
        self.batch = BatchExecutor(self.transport)
