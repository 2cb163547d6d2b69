"""Few-shot prompts for classification with an LLM: demonstrations, prompt text, label matching.

A prompt is an instruction naming the classes, then ``shots_per_class`` demonstrations per
class drawn (seeded) from the train split, then the query:

    Classify the text into one of these categories: World, Sports, Business, Sci/Tech.

    Text: Oil prices rise as ...
    Label: Business

    Text: <the test text>
    Label:

The model never generates freely: each class name is scored as the continuation
``" <name>\\n"`` (local backend) or the endpoint is asked for a JSON object whose ``label``
is one of the class names (HTTP backend), so every prediction is a valid label.
"""

from __future__ import annotations

import json
import re

import numpy as np

from textcls.errors import TextclsError


def select_shots(labels: np.ndarray, n_classes: int, shots_per_class: int, seed: int) -> list[int]:
    """Row indices of ``shots_per_class`` examples of each class, in a seeded shuffled order.

    The order is shuffled so the prompt does not end with a run of one class (recency bias).
    """
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in range(n_classes):
        rows = np.flatnonzero(labels == cls)
        if len(rows) < shots_per_class:
            raise TextclsError(f"The train split has {len(rows)} examples of class {cls}, fewer than "
                               f"shots_per_class={shots_per_class}. Fix: lower `shots_per_class`.")
        chosen.extend(rng.choice(rows, shots_per_class, replace=False).tolist())
    return [chosen[i] for i in rng.permutation(len(chosen))]


def one_line(text: str) -> str:
    """Texts on one line, so a demonstration's ``Label:`` line cannot be faked by the text itself."""
    return re.sub(r"\s+", " ", text).strip()


def instruction_text(template: str, label_names: list[str]) -> str:
    return template.format(labels=", ".join(label_names))


def demonstration(text: str, label: str) -> str:
    return f"Text: {one_line(text)}\nLabel: {label}\n\n"


def build_prefix(instruction: str, label_names: list[str], demos: list[tuple[str, str]]) -> str:
    """Everything before the query: the same for every test example (cached once by the local backend)."""
    shots = "".join(demonstration(text, label) for text, label in demos)
    return instruction_text(instruction, label_names) + "\n\n" + shots


def build_query(text: str) -> str:
    return f"Text: {one_line(text)}\nLabel:"


def label_continuation(name: str) -> str:
    """What the model must produce for class ``name``: the newline ends the answer, so a class whose
    name is a prefix of another's ("Sci" / "Sci/Tech") is not favoured."""
    return f" {name}\n"


def label_schema(label_names: list[str]) -> dict:
    """JSON schema of the HTTP backend's answer: ``{"label": <one of the class names>}``."""
    return {"type": "object", "properties": {"label": {"type": "string", "enum": list(label_names)}},
            "required": ["label"], "additionalProperties": False}


def chat_messages(instruction: str, label_names: list[str], demos: list[tuple[str, str]], text: str) -> list[dict]:
    """OpenAI-style chat messages: instruction as system prompt, each demonstration as a user/assistant turn."""
    system = (instruction_text(instruction, label_names)
              + ' Answer with a JSON object {"label": "<category>"} and nothing else.')
    messages = [{"role": "system", "content": system}]
    for demo_text, demo_label in demos:
        messages += [{"role": "user", "content": one_line(demo_text)},
                     {"role": "assistant", "content": json.dumps({"label": demo_label})}]
    return messages + [{"role": "user", "content": one_line(text)}]


def parse_label(answer: str, label_names: list[str]) -> int | None:
    """The class index an answer names, or None: JSON ``{"label": ...}`` first, then the bare name
    (case-insensitive), then the only class name the answer contains."""
    answer = answer.strip()
    try:
        value = json.loads(answer)
        if isinstance(value, dict):
            answer = str(value.get("label", ""))
    except ValueError:
        pass
    folded = [n.casefold() for n in label_names]
    key = answer.strip().strip(".\"'").casefold()
    if key in folded:
        return folded.index(key)
    found = [i for i, n in enumerate(folded) if re.search(rf"(?<!\w){re.escape(n)}(?!\w)", answer.casefold())]
    return found[0] if len(found) == 1 else None
