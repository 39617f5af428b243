"""Generate examples/story.jsonl: three cases' whole lives, for `minhu route` and `minhu lives`.

    python examples/make_story.py > examples/story.jsonl
    minhu route --input examples/story.jsonl --until 2026-11-12T00:00:00+08:00 > records.jsonl
    minhu lives records.jsonl

1. 独居老人的燃气报警 — a gas alarm in the flat of an elderly man living alone (成都一心社区):
   pushed to the grid worker, who goes at once and finds a kettle left on the flame. The
   detector goes off twice more in the next minutes (one case, not three). She resolves it, checks
   on site, and the old man rates the grid: satisfied.
2. An appeal that climbs to the street — water in an underground garage. The micro-grid asks
   the grid for help; the grid lets the acknowledge deadline pass; the community asks the
   street; the street solves it. Then everyone in the chain rates the unit above (下评上).
3. A dissatisfied rating reopens a case — night-time noise. The grid closes it, the caller is
   not satisfied, and the case is reopened one tier up at the community.

Along the way, what must be refused is refused: a person of another unit acknowledging, a
grid head verifying (only a 网格员 may), someone outside the chain rating, a second rating by
the same caller (一事一评), and resolving a case that is already closed.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

from handlers.ids import case_id_for
from handlers.intake import parse_input
from handlers.routing import assess
from schemas import EventRejected
from streams.config import load_registry, load_rules

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 2, 6, 40, tzinfo=CST)
lines: list[tuple[datetime, dict[str, Any]]] = []
REGISTRY = load_registry()
RULES = load_rules(None, REGISTRY)


def case_of(doc: dict[str, Any]) -> str:
    """minhu's case id for the case an intake event opens (handlers/ids.py)."""
    event = parse_input(json.dumps(doc), "story", None, T0)
    assert not isinstance(event, EventRejected), event
    assessed = assess(event, RULES, REGISTRY)  # type: ignore[arg-type]
    assert not isinstance(assessed, EventRejected), assessed
    return case_id_for(assessed.bucket, (doc["source"], doc["id"]))


def add(
    minutes: float, type_: str, source: str, event_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    at = T0 + timedelta(minutes=minutes)
    doc = {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": type_,
        "time": at.isoformat(),
        "datacontenttype": "application/json",
        "data": data,
    }
    lines.append((at, doc))
    return doc


def act(minutes: float, verb: str, case: str, actor: str, n: int, **extra: Any) -> None:
    add(
        minutes,
        f"minhu.case.{verb}",
        "/responder-app",
        f"story-act-{n:03d}",
        {"case_id": case, "actor_id": actor, **extra},
    )


def rating(
    minutes: float,
    case: str,
    rater: str,
    actor: str,
    verdict: str,
    n: int,
    comment: str | None = None,
) -> None:
    data = {"case_id": case, "actor_id": actor, "rater_id": rater, "verdict": verdict}
    if comment:
        data["comment"] = comment
    add(minutes, "minhu.rating.submitted", "/rating/12345-callback", f"story-rate-{n:03d}", data)


# 1. The gas alarm. Grid qy-g01: p0015 赵宏 (网格员), p0016 顾心 (网格长).
alarms = [
    add(
        minute,
        "minhu.alarm.raised",
        "/gateway/gw-qy-g01",
        f"story-gas-{k}",
        {
            "sensor_id": "qy-gas-liu",
            "gateway_id": "gw-qy-g01",
            "alarm_type": "gas_leak",
            "reading": 38.5 + 4 * k,
            "threshold": 25.0,
            "unit": "%LEL",
        },
    )
    for k, minute in enumerate((0, 2, 6), start=1)
]
gas = case_of(alarms[0])
act(1, "acknowledged", gas, "p0010", 1)  # a micro-grid worker: not the grid, refused
act(3, "acknowledged", gas, "p0015", 2, note="正在赶往现场")
act(
    14,
    "resolved",
    gas,
    "p0015",
    3,
    note="老人在灶上烧水后忘记关火，水壶干烧；已关闭燃气阀门并开窗通风，老人无恙",
    photo_urls=["https://img.minhu.example/story/kettle.jpg"],
)
act(20, "verified", gas, "p0016", 4)  # a grid head: only a grid worker may verify, refused
act(25, "verified", gas, "p0015", 5, note="已回访，燃气报警器工作正常")
rating(180, gas, "r-qy-liu", "r-qy-liu", "satisfied", 1, "网格员来得很快，谢谢！")
rating(200, gas, "r-qy-liu", "r-qy-liu", "dissatisfied", 2)  # a second rating: refused
act(240, "resolved", gas, "p0015", 6, note="补充说明")  # the case is closed: refused

# 2. The appeal that climbs: micro-grid qy-m011 → grid qy-g02 → community → street.
garage_appeal = add(
    60,
    "minhu.appeal.reported",
    "/12345/hotline",
    "story-garage",
    {
        "caller": {"id": "res-story-2", "name": "王建华", "phone": "13980012345"},
        "channel": "hotline_12345",
        "text": "地下车库积水很深，车都开不出去，已经两天了。",
        "location": {"address": "清源路10号清源小区一期13栋"},
    },
)
garage = case_of(garage_appeal)
act(70, "acknowledged", garage, "p0019", 10)
act(
    90,
    "escalation_requested",
    garage,
    "p0019",
    11,
    note="积水来自市政管网倒灌，微网格无法处置，提请网格协调",
)
# the grid (qy-g02) lets its 30-minute acknowledge deadline pass: escalated to the community
act(140, "acknowledged", garage, "p0005", 12)
act(200, "escalation_requested", garage, "p0005", 13, note="需街道协调水务部门疏通市政管网")
act(215, "acknowledged", garage, "p0002", 14)
act(
    600,
    "resolved",
    garage,
    "p0002",
    15,
    note="已协调水务部门疏通管网并抽排积水",
    photo_urls=["https://img.minhu.example/story/garage.jpg"],
)
act(700, "verified", garage, "p0025", 16, note="已实地核查，车库无积水")
rating(800, garage, "res-story-2", "res-story-2", "satisfied", 3)
rating(810, garage, "qy-m011", "p0019", "basically_satisfied", 4, "网格未及时响应")
rating(820, garage, "qingyuan", "p0004", "satisfied", 5)
rating(830, garage, "res-someone-else", "res-someone-else", "dissatisfied", 6)  # not in the chain

# 3. The dissatisfied caller: noise in 蜀光苑, grid qy-g07 → reopened at the community.
noise_appeal = add(
    900,
    "minhu.appeal.reported",
    "/wechat/official-account",
    "story-noise",
    {
        "caller": {"id": "res-story-3", "name": "李秀英", "phone": "18628001234"},
        "channel": "wechat",
        "text": "楼下KTV每天半夜喧哗，噪音扰民，孩子没法睡觉。",
        "location": {"address": "清源路34号蜀光苑3栋"},
    },
)
noise = case_of(noise_appeal)
act(930, "acknowledged", noise, "p0073", 20)
act(1500, "resolved", noise, "p0073", 21, note="已上门劝导，经营者承诺降低音量")
act(1560, "verified", noise, "p0073", 22)
rating(2000, noise, "res-story-3", "res-story-3", "dissatisfied", 7, "第二天晚上还是一样吵")
act(2010, "acknowledged", noise, "p0006", 23)
act(2600, "resolved", noise, "p0006", 24, note="联合派出所、市场监管所现场执法，已安装隔音设施")
act(2700, "verified", noise, "p0073", 25)
rating(3000, noise, "res-story-3", "res-story-3", "satisfied", 8, "现在安静了")

for _, doc in sorted(lines, key=lambda td: td[0]):
    sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
