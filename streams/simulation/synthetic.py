"""A realistic synthetic event stream for a registry: what `minhu demo` and `minhu bench` feed.

Deterministic for a seed. Appeals come from every channel in Chinese, with the location given
in each of the four forms (and sometimes not resolvable); some places and categories are
hotspots that residents call about again and again; sensors raise gas, smoke and other alarms,
a few of them in storms; grid workers report on patrol, often solving the matter on the spot.
A small share of records is broken on purpose: malformed JSON, wrong types, unknown types,
missing fields, texts over 4,000 characters, unknown sensors, and exact duplicates.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from handlers.registry import Registry, Role
from schemas.common import MAX_TEXT_CHARS

CST = timezone(timedelta(hours=8))
DEFAULT_START = datetime(2026, 10, 1, tzinfo=CST)

# What residents say, by category (category ids from escalation_rules.yaml).
APPEAL_TEXTS: dict[str, list[str]] = {
    "noise": [
        "楼上每天晚上十一点以后还在装修声不断，噪音太大，孩子没法睡觉。",
        "小区广场舞音响开得太大，晚上九点半了还在跳，严重扰民。",
        "隔壁KTV半夜喧哗，吵闹到凌晨两点。",
    ],
    "sanitation": [
        "楼下垃圾桶已经三天没人清运了，臭味很大。",
        "单元门口有人堆放建筑垃圾，脏乱不堪。",
        "电线杆上贴满了小广告，影响市容。",
    ],
    "parking": [
        "有车长期乱停在消防车道旁边，挡住了出入口。",
        "地下车库有一辆僵尸车，停了半年没人管。",
        "有人把车停在我家车库门口，堵门出不去。",
    ],
    "property": [
        "物业对楼道灯不亮的问题一直推诿，报修一周没人来。",
        "小区门禁坏了一个月了，外来人员随便进出。",
    ],
    "public_facility": [
        "小区门口路灯坏了好几盏，晚上很黑。",
        "人行道上一个井盖松动了，走上去晃得厉害。",
        "健身器材破损，螺丝都掉了，小孩玩很危险。",
    ],
    "water_power": [
        "我们单元从早上开始停水，也没有通知，什么时候来水？",
        "整栋楼停电了，家里有老人，请尽快处理。",
        "最近水压特别低，六楼以上基本没水。",
    ],
    "flooding": ["楼上卫生间漏水，渗水到我家天花板了。", "地下车库积水很深，车都开不出去。"],
    "elder_care": [
        "隔壁独居老人好几天没见出门了，请社区去探访一下。",
        "家里高龄老人想申请助餐服务，怎么办理？",
    ],
    "neighbour_dispute": [
        "和邻居因为公共区域堆放杂物产生纠纷，请社区来调解。",
        "楼上楼下因为漏水的事吵架，矛盾越来越大。",
    ],
    "fire_safety": [
        "有人在楼道里飞线充电，电动车充电很不安全。",
        "消防通道被杂物堵死了，万一着火怎么办？",
        "楼道灭火器过期了，一直没人更换。",
    ],
    "illegal_construction": [
        "一楼住户在绿地上私搭乱建了一个棚子。",
        "顶楼有人违章搭建阳光房，占用公共空间。",
    ],
    "construction_nuisance": [
        "附近工地夜间作业，打桩声音让人睡不着。",
        "施工车辆渣土撒了一路，也没人清扫。",
    ],
    "market_order": ["菜市场门口摊贩占道经营，人车混行很危险。", "菜市场里有商贩缺斤少两。"],
    "greening": ["小区的树枝太长挡住了窗户，希望修剪一下。", "绿化带里杂草丛生，很久没有养护。"],
    "pets": ["有人遛狗不牵绳，还吓到了小孩。", "楼道里有狗粪便，宠物主人不清理。"],
    "policy_inquiry": ["想咨询一下医保报销怎么办理。", "请问低保补贴需要什么材料？"],
    "gas_safety": ["楼道里有很浓的煤气味，怀疑燃气泄漏！", "邻居家好像漏气了，燃气味很重。"],
    "other": ["希望社区多组织一些文化活动。", "小区的快递柜不够用，能不能多装几个。"],
}
URGENT = ["厨房着火了，快来人！", "楼下有人晕倒了，救命！", "老人被困在家里出不来，救命！"]
PATROL_TEXTS: dict[str, list[str]] = {
    "sanitation": ["巡查发现垃圾分类点满溢，已联系保洁清运。", "绿化带内有白色垃圾。"],
    "fire_safety": ["巡查发现电动车在楼道充电，已劝离。", "消防通道有杂物堆放。"],
    "public_facility": ["巡查发现路灯损坏两盏。", "护栏松动，存在安全隐患。"],
    "parking": ["巡查发现车辆占用盲道。", "共享单车乱停放堵塞通道。"],
    "elder_care": ["走访独居老人，老人身体状况良好。", "探访高龄老人，发现家中无人照料。"],
    "illegal_construction": ["巡查发现一处新建违建，已拍照取证。"],
    "market_order": ["巡查发现流动摊贩占道经营，已劝离。"],
    "flooding": ["巡查发现地下室渗水。"],
}
CHANNELS = [
    ("hotline_12345", 35),
    ("wechat", 30),
    ("qr_code", 15),
    ("app", 10),
    ("walk_in", 8),
    ("letter_box", 2),
]
CHANNEL_SOURCES = {
    "hotline_12345": "/12345/hotline",
    "wechat": "/wechat/official-account",
    "qr_code": "/qr/table-code",
    "app": "/app/snapshot",
    "walk_in": "/service-station/walk-in",
    "letter_box": "/letter-box",
}
READINGS = {
    "gas_leak": (25.0, "%LEL"),
    "smoke": (0.15, "dB/m"),
    "water_leak": (1.0, "cm"),
    "door_sensor": (24.0, "h"),
    "fall": (1.0, None),
    "elevator_trapped": (1.0, None),
}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"

Doc = dict[str, Any]


class StreamGenerator:
    """Yields (time, JSON line) in time order; `lines()` gives just the lines."""

    def __init__(
        self,
        registry: Registry,
        seed: int = 7,
        start: datetime = DEFAULT_START,
        days: int = 30,
        varied: bool = False,
    ) -> None:
        """`varied`: every appeal and patrol text is made unique (`_vary`), as real ones are —
        for the benchmarks, so that no cache of texts could flatter them. The demo's texts are
        the fixed examples below (and its history stays the same for a seed)."""
        self.reg = registry
        self.rng = random.Random(seed)
        self.vary = random.Random(seed * 31 + 17) if varied else None
        self.start = start
        self.span = timedelta(days=days)
        self.micro_grids = sorted(
            u.id for u in registry.units.values() if u.tier.value == "micro_grid"
        )
        self.buildings_of: dict[str, list[str]] = {}
        for b in sorted(registry.buildings.values(), key=lambda b: b.id):
            if b.micro_grid_id:
                self.buildings_of.setdefault(b.micro_grid_id, []).append(b.id)
        self.dedicated = sorted(
            b.id for b in registry.buildings.values() if b.micro_grid_id is None
        )
        self.sensors = sorted(registry.sensors.values(), key=lambda s: s.id)
        self.workers = sorted(
            (
                p
                for p in registry.people.values()
                if p.role in (Role.GRID_WORKER, Role.MICRO_GRID_WORKER)
            ),
            key=lambda p: p.id,
        )
        self.residents = [f"res-{i:05d}" for i in range(4000)]
        self.seq = 0

    # ---- building blocks ----

    def _time(self) -> datetime:
        """A moment in the span, mostly in waking hours."""
        day = self.rng.randrange(self.span.days)
        hour = self.rng.choices(
            range(24),
            weights=[1, 1, 1, 1, 1, 2, 4, 8, 10, 10, 9, 8, 7, 8, 9, 9, 8, 8, 9, 10, 8, 6, 4, 2],
        )[0]
        return self.start + timedelta(
            days=day, hours=hour, minutes=self.rng.randrange(60), seconds=self.rng.randrange(60)
        )

    def _envelope(self, type_: str, source: str, at: datetime, data: Doc) -> Doc:
        self.seq += 1
        return {
            "specversion": "1.0",
            "id": f"evt-{self.seq:08d}",
            "source": source,
            "type": type_,
            "time": at.isoformat(),
            "datacontenttype": "application/json",
            "data": data,
        }

    def _location(self, mg: str) -> Doc:
        r = self.rng.random()
        b = self.rng.choice(self.buildings_of[mg])
        if r < 0.40:
            addr = self.reg.buildings[b].address
            return {
                "address": f"{addr}{self.rng.randrange(1, 4)}单元{self.rng.randrange(1, 19)}0{self.rng.randrange(1, 5)}"
            }
        if r < 0.65:
            return {"building_id": b}
        if r < 0.80:
            return {"micro_grid_id": mg}
        if r < 0.95:
            lat, lon = next((la, lo) for la, lo, m in self.reg.micro_grid_points if m == mg)
            return {
                "lat": round(lat + self.rng.uniform(-0.0003, 0.0003), 6),
                "lon": round(lon + self.rng.uniform(-0.0003, 0.0003), 6),
            }
        if r < 0.975:
            community = self.reg.units[self.reg.units[mg].community_id or ""].name
            return {"address": f"{community}附近的路口"}
        return {"address": self.rng.choice(["人民南路三段", "天府广场地铁站", "不知道具体地址"])}

    def _caller(self) -> Doc:
        rid = self.rng.choice(self.residents)
        name = self.rng.choice(SURNAMES) + self.rng.choice(GIVEN)
        phone = self.rng.choice(["138", "139", "186", "135"]) + f"{self.rng.randrange(10**8):08d}"
        return {"id": rid, "name": name, "phone": phone}

    def _vary(self, text: str, resident: bool = True) -> str:
        """The text as one person would write it (with `varied`): where a resident lives, how
        long it has lasted, a size or a count, a request, each drawn at random around the
        example, so that hardly two texts of a stream are alike while the words that decide
        the category and the severity stay the example's."""
        v = self.vary
        if v is None:
            return text
        room = f"{v.randrange(1, 40)}号楼{v.randrange(1, 7)}单元{v.randrange(101, 2899)}室"
        who = v.choice(["", f"我是{room}的住户，", f"您好，我住{room}，", f"{room}反映："])
        since = v.choice(
            [
                "",
                f"已经{v.randrange(2, 60)}天了，",
                f"从{v.randrange(1, 13)}月{v.randrange(1, 29)}日起，",
            ]
        )
        extra = v.choice(
            ["", f"大约{v.randrange(5, 300)}平方米。", f"有{v.randrange(2, 30)}户受影响。"]
        )
        ask = v.choice(
            ["", "麻烦尽快处理。", "希望有人来看看，谢谢！", f"已经反映过{v.randrange(2, 9)}次。"]
        )
        return f"{who if resident else ''}{since}{text}{extra}{ask}"

    def appeal(self, at: datetime, mg: str | None = None, category: str | None = None) -> Doc:
        mg = mg or self.rng.choice(self.micro_grids)
        if category is None:
            category = self.rng.choice(sorted(APPEAL_TEXTS))
        text = (
            self.rng.choice(URGENT)
            if self.rng.random() < 0.01
            else self.rng.choice(APPEAL_TEXTS[category])
        )
        channel = self.rng.choices([c for c, _ in CHANNELS], weights=[w for _, w in CHANNELS])[0]
        data: Doc = {
            "caller": self._caller(),
            "channel": channel,
            "text": self._vary(text),
            "location": self._location(mg),
        }
        if channel in ("app", "qr_code") and self.rng.random() < 0.6:
            data["category"] = category
        return self._envelope("minhu.appeal.reported", CHANNEL_SOURCES[channel], at, data)

    def alarm(self, at: datetime, sensor_index: int | None = None) -> Doc:
        s = self.sensors[
            sensor_index if sensor_index is not None else self.rng.randrange(len(self.sensors))
        ]
        kind = sorted(s.alarm_types)[0]
        threshold, unit = READINGS[kind.value]
        data: Doc = {
            "sensor_id": s.id,
            "gateway_id": s.gateway,
            "alarm_type": kind.value,
            "reading": round(threshold * self.rng.uniform(1.05, 3.0), 2),
            "threshold": threshold,
        }
        if unit:
            data["unit"] = unit
        return self._envelope("minhu.alarm.raised", f"/gateway/{s.gateway}", at, data)

    def patrol(self, at: datetime) -> Doc:
        w = self.rng.choice(self.workers)
        unit = self.reg.units[w.unit_id]
        if unit.tier.value == "micro_grid":
            mg = unit.id
        else:
            mgs = [m for m in self.micro_grids if self.reg.units[m].grid_id == unit.id]
            mg = self.rng.choice(mgs) if mgs else self.rng.choice(self.micro_grids)
        category = self.rng.choice(sorted(PATROL_TEXTS))
        data: Doc = {
            "reporter_id": w.id,
            "category": category,
            "text": self._vary(self.rng.choice(PATROL_TEXTS[category]), resident=False),
            "photo_urls": [f"https://img.minhu.example/patrol/{self.seq + 1}.jpg"],
            "location": {"micro_grid_id": mg},
            "handled_on_spot": self.rng.random() < 0.5,
        }
        return self._envelope("minhu.patrol.reported", "/grid/patrol-app", at, data)

    # ---- the stream ----

    def events(self, n: int) -> list[tuple[datetime, str]]:
        """n records in time order (the broken ones among them)."""
        rng = self.rng
        docs: list[tuple[datetime, Doc | str]] = []
        n_broken = max(n // 100, 7 if n >= 50 else 0)
        n_dup = max(n // 100, 1 if n >= 50 else 0)
        n_storm = max(n // 200, 12 if n >= 500 else 0)
        n_hot = n // 20
        plain = max(n - n_broken - n_dup - n_storm - n_hot, 0)
        # Hotspots: the same place and category, again and again within days.
        while n_hot > 0:
            mg, cat = rng.choice(self.micro_grids), rng.choice(sorted(APPEAL_TEXTS))
            t0 = self._time()
            for _ in range(min(rng.randrange(3, 6), n_hot)):
                at = t0 + timedelta(hours=rng.randrange(0, 96))
                docs.append((at, self.appeal(at, mg, cat)))
                n_hot -= 1
        # Alarm storms: one sensor firing every minute or two.
        while n_storm > 0:
            si, t0 = rng.randrange(len(self.sensors)), self._time()
            for k in range(min(rng.randrange(4, 12), n_storm)):
                at = t0 + timedelta(seconds=k * rng.randrange(40, 130))
                docs.append((at, self.alarm(at, si)))
                n_storm -= 1
        for _ in range(plain):
            at = self._time()
            r = rng.random()
            doc = self.appeal(at) if r < 0.62 else self.alarm(at) if r < 0.77 else self.patrol(at)
            docs.append((at, doc))
        docs.sort(key=lambda td: td[0])
        out: list[tuple[datetime, str]] = [(t, json.dumps(d, ensure_ascii=False)) for t, d in docs]
        for i in range(n_broken):
            pos = rng.randrange(len(out) + 1)
            at = out[min(pos, len(out) - 1)][0] if out else self.start
            out.insert(pos, (at, self._broken(i, at)))
        for _ in range(n_dup):
            if out:
                pos = rng.randrange(len(out))
                out.insert(min(pos + rng.randrange(1, 50), len(out)), out[pos])
        return out

    def lines(self, n: int) -> Iterator[str]:
        for _, line in self.events(n):
            yield line

    def _broken(self, i: int, at: datetime) -> str:
        good = self.appeal(at)
        kind = i % 7
        if kind == 0:  # truncated JSON
            return json.dumps(good, ensure_ascii=False)[: self.rng.randrange(10, 80)]
        if kind == 1:  # wrong type
            good["data"]["channel"] = 12345
            return json.dumps(good, ensure_ascii=False)
        if kind == 2:  # unknown event type
            good["type"] = "minhu.complaint.filed"
            return json.dumps(good, ensure_ascii=False)
        if kind == 3:  # missing field
            del good["data"]["location"]
            return json.dumps(good, ensure_ascii=False)
        if kind == 4:  # text over 4,000 characters
            good["data"]["text"] = "反映问题" * (MAX_TEXT_CHARS // 4 + 1)
            return json.dumps(good, ensure_ascii=False)
        alarm = self.alarm(at)
        if kind == 5:  # unknown sensor
            alarm["data"]["sensor_id"] = f"unregistered-{self.rng.randrange(1000)}"
        else:  # a sensor reported through the wrong gateway
            alarm["data"]["gateway_id"] = "gw-unknown"
        return json.dumps(alarm, ensure_ascii=False)


class Responders:
    """Simulated people answering the cases minhu dispatches: they acknowledge, resolve, ask to
    escalate or let a deadline pass; grid workers verify on site; callers and units rate.

    `react(event)` takes an event minhu emitted and returns the (time, JSON line) records the
    people would publish in answer. Deterministic for a seed.
    """

    def __init__(self, registry: Registry, seed: int = 7) -> None:
        self.reg = registry
        self.rng = random.Random(seed * 7919 + 1)
        self.n = 0
        self.places: dict[str, tuple[str | None, str | None]] = {}  # case -> (grid, community)
        # case -> the caller's id, as the dispatch record gives it to the callback centre (a
        # rating request names a resident by a pseudonym only)
        self.callers: dict[str, str] = {}
        self.members: dict[str, list[str]] = {}
        for p in sorted(registry.people.values(), key=lambda p: p.id):
            self.members.setdefault(p.unit_id, []).append(p.id)
        self.grid_workers = sorted(
            p.id for p in registry.people.values() if p.role is Role.GRID_WORKER
        )
        self.lag = timedelta(0)

    def _line(
        self, type_: str, at: datetime, data: Doc, source: str = "/responder-app"
    ) -> tuple[datetime, str]:
        self.n += 1
        at = at + self.lag
        doc = {
            "specversion": "1.0",
            "id": f"act-{self.n:08d}",
            "source": source,
            "type": type_,
            "time": at.isoformat(),
            "datacontenttype": "application/json",
            "data": data,
        }
        return at, json.dumps(doc, ensure_ascii=False)

    def _actor(self, unit_id: str) -> str:
        return self.rng.choice(self.members.get(unit_id) or ["nobody"])

    def react(self, event: Any, seen: datetime | None = None) -> list[tuple[datetime, str]]:
        """People learn of an event when minhu emits it (`seen`, by default its own time): a
        deadline that fires while the stream is quiet is emitted when the next record moves the
        clock past it, and nobody can answer it before then."""
        self.lag = max(seen - event.time, timedelta(0)) if seen is not None else timedelta(0)
        t = event.type
        d = event.data
        if t == "minhu.case.routed":
            self.places[d.case_id] = (d.grid_id, d.community_id)
            if d.caller is not None:
                self.callers[d.case_id] = d.caller.id
            if d.status == "closed":
                return []
            return self._assignment(
                d.case_id, d.unit_id, d.tier.value, event.time, d.acknowledge_by, d.resolve_by
            )
        if t in ("minhu.case.escalated", "minhu.case.reopened"):
            if d.district_handoff or getattr(d, "reason", None) == "repeated_appeals":
                return []  # no new unit to answer (repeats: the routed case already has one)
            unit = d.to_unit_id if t == "minhu.case.escalated" else d.unit_id
            tier = d.to_tier if t == "minhu.case.escalated" else d.tier
            return self._assignment(
                d.case_id, unit, tier.value, event.time, d.acknowledge_by, d.resolve_by
            )
        if t == "minhu.case.updated" and d.status == "resolved":
            return self._verify(d.case_id, event.time)
        if t == "minhu.rating.requested":
            return self._rate(d, event.time)
        return []

    def _assignment(
        self,
        case_id: str,
        unit: str,
        tier: str,
        at: datetime,
        ack_by: datetime | None,
        resolve_by: datetime | None,
    ) -> list[tuple[datetime, str]]:
        rng = self.rng
        ack_window = (ack_by - at) if ack_by else timedelta(hours=2)
        res_window = (resolve_by - at) if resolve_by else timedelta(days=7)
        r = rng.random()
        if r < 0.06:
            return []  # nobody answers: the acknowledge deadline will escalate it
        late = r < 0.08  # answers, but after the deadline: by then the case has moved on
        ack_at = at + ack_window * (rng.uniform(1.05, 1.6) if late else rng.uniform(0.05, 0.9))
        out = [
            self._line(
                "minhu.case.acknowledged",
                ack_at,
                {"case_id": case_id, "actor_id": self._actor(unit)},
            )
        ]
        r = rng.random()
        if r < 0.07 and tier != "street":
            out.append(
                self._line(
                    "minhu.case.escalation_requested",
                    ack_at + res_window * rng.uniform(0.05, 0.3),
                    {
                        "case_id": case_id,
                        "actor_id": self._actor(unit),
                        "note": "网格内解决不了，提请上级协调",
                    },
                )
            )
        elif r < 0.11:
            pass  # acknowledged, never resolved: the resolve deadline will escalate it
        else:
            out.append(
                self._line(
                    "minhu.case.resolved",
                    ack_at + (at + res_window - ack_at) * rng.uniform(0.1, 0.95),
                    {
                        "case_id": case_id,
                        "actor_id": self._actor(unit),
                        "note": "已现场处置完毕",
                        "photo_urls": [f"https://img.minhu.example/done/{case_id}.jpg"],
                    },
                )
            )
        return out

    def _verify(self, case_id: str, at: datetime) -> list[tuple[datetime, str]]:
        grid, community = self.places.get(case_id, (None, None))
        if grid is not None:
            worker = next(
                (
                    p
                    for p in self.members.get(grid, [])
                    if self.reg.people[p].role is Role.GRID_WORKER
                ),
                None,
            )
        else:
            worker = next(
                (
                    p
                    for p in self.grid_workers
                    if community is None
                    or self.reg.units[self.reg.people[p].unit_id].community_id == community
                ),
                None,
            )
        if worker is None:
            return []
        return [
            self._line(
                "minhu.case.verified",
                at + timedelta(minutes=self.rng.randrange(20, 240)),
                {"case_id": case_id, "actor_id": worker, "note": "已实地核查"},
            )
        ]

    def _rate(self, d: Any, at: datetime) -> list[tuple[datetime, str]]:
        rng = self.rng
        if rng.random() < 0.15:
            return []  # not every caller rates
        verdict = rng.choices(
            ["satisfied", "basically_satisfied", "dissatisfied"], weights=[82, 12, 6]
        )[0]
        if d.rater_kind == "caller":
            actor = rater = self.callers.get(d.case_id, d.rater_id)
        else:
            actor, rater = self._actor(d.rater_id), d.rater_id
        data: Doc = {
            "case_id": d.case_id,
            "actor_id": actor,
            "rater_id": rater,
            "verdict": verdict,
            "score": {"satisfied": 5, "basically_satisfied": 4, "dissatisfied": 2}[verdict],
        }
        if verdict == "dissatisfied":
            data["comment"] = "问题没有真正解决，希望重新处理"
        return [
            self._line(
                "minhu.rating.submitted",
                at + timedelta(hours=rng.uniform(1, 72)),
                data,
                source="/rating/12345-callback",
            )
        ]
