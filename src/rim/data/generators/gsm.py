"""GSM-style word problems with GSM8k-Aug calculator steps ``<<a op b=c>>``.

Our own templates (`TEMPLATES`, a dozen everyday situations) with sampled names and numbers;
every step is computed, so the arithmetic and the answer (the last step's result) are correct by
construction and all intermediate values are whole numbers. With ``source="reasoning_gym"`` the
problems come from the optional `reasoning-gym` package's ``gsm_symbolic`` task instead (its
worked solution lines become the steps).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from rim.common.errors import RimInputError
from rim.data.generators.calc import calc_step
from rim.data.records import Record

Problem = tuple[str, list[str], int]
_NAMES = (
    "Ava", "Ben", "Carla", "Diego", "Emma", "Farah", "Gus", "Hana", "Ivan", "Julia",
    "Kofi", "Lena", "Marco", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tara",
)  # fmt: skip
_ITEMS = ("notebooks", "pens", "mugs", "candles", "books", "shirts", "plants", "toys")
_FRUITS = ("apples", "oranges", "pears", "peaches", "lemons", "plums")


def _shopping_change(rng: random.Random, name: str) -> Problem:
    count, price = rng.randint(2, 9), rng.randint(2, 15)
    cost = count * price
    bill = next(b for b in (20, 50, 100, 200) if b > cost)
    item = rng.choice(_ITEMS)
    question = (
        f"{name} buys {count} {item} that cost ${price} each and pays with a ${bill} bill. "
        "How much change does "
        f"{name} get back?"
    )
    return (
        question,
        [calc_step(f"{count}*{price}", cost), calc_step(f"{bill}-{cost}", bill - cost)],
        bill - cost,
    )


def _savings(rng: random.Random, name: str) -> Problem:
    weekly, weeks = rng.randint(5, 40), rng.randint(3, 12)
    saved = weekly * weeks
    spent = rng.randint(1, saved - 1)
    question = (
        f"{name} saves ${weekly} every week for {weeks} weeks. Then {name} spends ${spent} on a "
        "gift. How much money is left?"
    )
    return (
        question,
        [calc_step(f"{weekly}*{weeks}", saved), calc_step(f"{saved}-{spent}", saved - spent)],
        saved - spent,
    )


def _sharing(rng: random.Random, name: str) -> Problem:
    friends, each = rng.randint(2, 8), rng.randint(3, 12)
    total, eaten = friends * each, rng.randint(1, each - 1)
    fruit = rng.choice(_FRUITS)
    question = (
        f"{name} has {total} {fruit} and shares them equally among {friends} friends. Each "
        f"friend eats {eaten} of them. How many {fruit} does each friend have left?"
    )
    return (
        question,
        [calc_step(f"{total}/{friends}", each), calc_step(f"{each}-{eaten}", each - eaten)],
        each - eaten,
    )


def _road_trip(rng: random.Random, name: str) -> Problem:
    speed, first, second = rng.randint(30, 70), rng.randint(1, 5), rng.randint(1, 5)
    d1, d2 = speed * first, speed * second
    question = (
        f"{name} drives at {speed} miles per hour for {first} hours, takes a break, and then "
        f"drives {second} more hours at the same speed. How many miles does {name} drive in all?"
    )
    steps = [
        calc_step(f"{speed}*{first}", d1),
        calc_step(f"{speed}*{second}", d2),
        calc_step(f"{d1}+{d2}", d1 + d2),
    ]
    return question, steps, d1 + d2


def _garden(rng: random.Random, name: str) -> Problem:
    rows, per_row = rng.randint(3, 12), rng.randint(4, 15)
    planted = rows * per_row
    died = rng.randint(1, planted // 3)
    question = (
        f"{name} plants {rows} rows of tomatoes with {per_row} plants in each row. {died} of the "
        "plants do not survive. How many tomato plants are left?"
    )
    return (
        question,
        [calc_step(f"{rows}*{per_row}", planted), calc_step(f"{planted}-{died}", planted - died)],
        planted - died,
    )


def _discount(rng: random.Random, name: str) -> Problem:
    percent = rng.choice((10, 20, 25, 30, 40, 50))
    price = rng.randint(2, 40) * 20
    off = price * percent // 100
    question = (
        f"A jacket costs ${price}. {name} buys it during a sale with {percent}% off. How much "
        f"does {name} pay for the jacket?"
    )
    return (
        question,
        [calc_step(f"{price}*{percent}/100", off), calc_step(f"{price}-{off}", price - off)],
        price - off,
    )


def _ages(rng: random.Random, name: str) -> Problem:
    age, times, years = rng.randint(3, 15), rng.randint(2, 4), rng.randint(2, 10)
    aunt = age * times
    question = (
        f"{name} is {age} years old. {name}'s aunt is {times} times as old as {name}. How old "
        f"will the aunt be in {years} years?"
    )
    return (
        question,
        [calc_step(f"{age}*{times}", aunt), calc_step(f"{aunt}+{years}", aunt + years)],
        aunt + years,
    )


def _reading(rng: random.Random, name: str) -> Problem:
    per_day, days = rng.randint(5, 30), rng.randint(2, 9)
    read = per_day * days
    pages = read + rng.randint(10, 200)
    question = (
        f"A book has {pages} pages. {name} reads {per_day} pages every day. How many pages are "
        f"left after {days} days?"
    )
    return (
        question,
        [calc_step(f"{per_day}*{days}", read), calc_step(f"{pages}-{read}", pages - read)],
        pages - read,
    )


def _eggs(rng: random.Random, name: str) -> Problem:
    dozens = rng.randint(2, 10)
    eggs = dozens * 12
    used = rng.randint(1, eggs - 1)
    question = f"{name} buys {dozens} dozen eggs and uses {used} of them for baking. How many eggs are left?"
    return (
        question,
        [calc_step(f"{dozens}*12", eggs), calc_step(f"{eggs}-{used}", eggs - used)],
        eggs - used,
    )


def _wages(rng: random.Random, name: str) -> Problem:
    rate, hours, days = rng.randint(8, 30), rng.randint(2, 8), rng.randint(2, 6)
    daily = rate * hours
    question = (
        f"{name} earns ${rate} an hour and works {hours} hours a day. How much does {name} earn "
        f"in {days} days?"
    )
    return (
        question,
        [calc_step(f"{rate}*{hours}", daily), calc_step(f"{daily}*{days}", daily * days)],
        daily * days,
    )


def _boxes(rng: random.Random, name: str) -> Problem:
    per_box, boxes, price = rng.randint(4, 12), rng.randint(3, 20), rng.randint(2, 9)
    fruit = rng.choice(_FRUITS)
    total = per_box * boxes
    question = (
        f"{name} picks {total} {fruit} and packs them into boxes of {per_box}. Each box sells "
        f"for ${price}. How much money does {name} make by selling all the boxes?"
    )
    return (
        question,
        [calc_step(f"{total}/{per_box}", boxes), calc_step(f"{boxes}*{price}", boxes * price)],
        boxes * price,
    )


def _marbles(rng: random.Random, name: str) -> Problem:
    red, blue, green = rng.randint(2, 30), rng.randint(2, 30), rng.randint(2, 30)
    total = red + blue + green
    if total % 2:
        green += 1
        total += 1
    half = total // 2
    question = (
        f"{name} has {red} red marbles, {blue} blue marbles and {green} green marbles. {name} "
        "gives half of all the marbles to a friend. How many marbles does "
        f"{name} have now?"
    )
    return (
        question,
        [calc_step(f"{red}+{blue}+{green}", total), calc_step(f"{total}/2", half)],
        half,
    )


def _tickets(rng: random.Random, name: str) -> Problem:
    adults, children = rng.randint(1, 6), rng.randint(1, 8)
    adult_price, child_price = rng.randint(8, 25), rng.randint(3, 10)
    a_cost, c_cost = adults * adult_price, children * child_price
    question = (
        f"Adult tickets to the zoo cost ${adult_price} and child tickets cost ${child_price}. "
        f"{name} buys {adults} adult tickets and {children} child tickets. How much does "
        f"{name} spend?"
    )
    steps = [
        calc_step(f"{adults}*{adult_price}", a_cost),
        calc_step(f"{children}*{child_price}", c_cost),
        calc_step(f"{a_cost}+{c_cost}", a_cost + c_cost),
    ]
    return question, steps, a_cost + c_cost


TEMPLATES: dict[str, Callable[[random.Random, str], Problem]] = {
    "shopping_change": _shopping_change,
    "savings": _savings,
    "sharing": _sharing,
    "road_trip": _road_trip,
    "garden": _garden,
    "discount": _discount,
    "ages": _ages,
    "reading": _reading,
    "eggs": _eggs,
    "wages": _wages,
    "boxes": _boxes,
    "marbles": _marbles,
    "tickets": _tickets,
}


def generate_gsm(n: int, seed: int, *, source: str = "templates") -> list[Record]:
    """`n` GSM-style problems from our templates (``source="templates"``) or from
    reasoning-gym's ``gsm_symbolic`` (``source="reasoning_gym"``, needs `reasoning-gym`)."""
    if n < 1:
        raise RimInputError(f"n must be at least 1, got {n}")
    if source == "reasoning_gym":
        return _from_reasoning_gym(n, seed)
    if source != "templates":
        raise RimInputError(f"unknown gsm source {source!r} (known: templates, reasoning_gym)")
    rng = random.Random(seed)
    names = list(TEMPLATES)
    records = []
    for _ in range(n):
        template = rng.choice(names)
        question, steps, answer = TEMPLATES[template](rng, rng.choice(_NAMES))
        records.append(Record(question, tuple(steps), str(answer), {"template": template}))
    return records


def _from_reasoning_gym(n: int, seed: int) -> list[Record]:
    try:
        import reasoning_gym
    except ImportError:
        raise RimInputError(
            "source='reasoning_gym' needs the optional 'reasoning-gym' package: "
            "pip install 'reasoning-in-memory[data]' (or: pip install reasoning-gym)"
        ) from None
    dataset = reasoning_gym.create_dataset("gsm_symbolic", size=n, seed=seed)
    records = []
    for item in dataset:
        metadata = item.get("metadata", {}) or {}
        cot = str(metadata.get("answer_cot", ""))
        steps = tuple(line.strip() for line in cot.split("####")[0].splitlines() if line.strip())
        records.append(
            Record(
                str(item["question"]),
                steps,
                str(item["answer"]).strip(),
                {"source": "reasoning_gym/gsm_symbolic"},
            )
        )
    return records
