"""A simulated generative AI service for the demo: a help-desk chat assistant on billing.

Each question is answered by a language model through a provider, with its token counts (the
system prompt's read from the provider's cache), finish reason and latency; the model gives no
confidence. Some answers are judged later as feedback with named scores: a person's helpfulness
(1 to 5), a model-as-judge's faithfulness (0 to 1) and a rule's toxicity flag. It records
everything through the agent SDK, as a real service would. Run ``shifted``, its users ask about
travel instead of bills, at three times the length.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from driftline.agent import Driftline, Score

SERVICE = "help-desk"
MODEL = "support-bot"
VERSION = "2026.11"
PROVIDER = "openai"
RESPONSE_MODEL = "gpt-4o-mini-2024-07-18"  # what the price table prices
SYSTEM_TOKENS = 180  # the system prompt, read from the provider's prompt cache
PRICES = Path(__file__).with_name("prices.yaml")  # an example price table, which prices it

_BILLING = (
    ["pay", "download", "cancel", "change", "dispute", "find", "split", "update"],
    ["invoice", "bill", "refund", "subscription", "receipt", "payment", "plan", "card"],
)
_TRAVEL = (
    ["book", "change", "cancel", "upgrade", "check in for", "find", "move", "confirm"],
    ["flight", "hotel", "train", "seat", "luggage", "visa", "rental car", "itinerary"],
)
_MONTHS = ["January", "March", "June", "September", "November"]
_CITIES = ["Lisbon", "Osaka", "Nairobi", "Quebec", "Tallinn", "Cusco"]


@dataclass
class ChatResult:
    decisions: list[uuid.UUID] = field(default_factory=list)
    judged: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


def run_chat(
    client: Driftline, *, decisions: int, seed: int = 11, shifted: bool = False
) -> ChatResult:
    rng = random.Random(seed)
    result = ChatResult()
    for _ in range(decisions):
        question = _travel(rng) if shifted else _billing(rng)
        answer = _answer(rng, shifted)
        truncated = rng.random() < 0.04
        input_tokens = SYSTEM_TOKENS + len(question) // 4
        output_tokens = len(answer) // 4 + (rng.randrange(40, 80) if truncated else 0)
        decision_id = client.record_decision(
            model=MODEL,
            version=VERSION,
            inputs={"question": question, "channel": rng.choice(["web", "app", "email"])},
            output=answer,
            latency_ms=round(rng.uniform(350, 900) + 6 * output_tokens, 1),
            operation="chat",
            provider=PROVIDER,
            response_model=RESPONSE_MODEL,
            finish_reason="length" if truncated else "stop",
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_input_tokens=SYSTEM_TOKENS,
        )
        result.decisions.append(decision_id)
        result.input_tokens += input_tokens
        result.output_tokens += output_tokens
        if rng.random() < 0.3:
            _judge(client, rng, decision_id, shifted)
            result.judged += 1
    return result


def _billing(rng: random.Random) -> str:
    verb, noun = rng.choice(_BILLING[0]), rng.choice(_BILLING[1])
    return (
        f"How do I {verb} my {noun} for {rng.choice(_MONTHS)}? "
        f"The amount shown is {rng.randrange(5, 400)} euros."
    )


def _travel(rng: random.Random) -> str:
    verb, noun, city = rng.choice(_TRAVEL[0]), rng.choice(_TRAVEL[1]), rng.choice(_CITIES)
    return (
        f"I am going to {city} in {rng.choice(_MONTHS)} with my family and I need to {verb} "
        f"my {noun}. We land late at night, my partner needs step-free access, and the "
        f"booking reference on the confirmation e-mail does not match the one in the app. "
        f"Can you {verb} the {noun} and tell me what it will cost?"
    )


def _answer(rng: random.Random, shifted: bool) -> str:
    if shifted and rng.random() < 0.2:
        return "I'm sorry, but I can't help with travel bookings."
    place = rng.choice(["Billing", "Account", "Payments"])
    return f"Open {place} in your account, choose the item, then follow the steps shown there."


def _judge(client: Driftline, rng: random.Random, decision_id: uuid.UUID, shifted: bool) -> None:
    helpful = rng.choice([1, 2, 2, 3]) if shifted else rng.choice([3, 4, 4, 5, 5])
    client.record_feedback(
        decision_id,
        model=MODEL,
        version=VERSION,
        reporter="support-quality",
        scores=[
            Score(name="helpfulness", value=helpful, source="human"),
            Score(
                name="faithfulness",
                value=round(rng.uniform(0.2, 0.7) if shifted else rng.uniform(0.7, 1.0), 2),
                source="model",
                comment="judged against the help-centre articles",
            ),
            Score(name="toxic", value=False, source="rule"),
        ],
    )
