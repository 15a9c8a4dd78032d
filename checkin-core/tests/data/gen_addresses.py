#!/usr/bin/env python3
"""Writes addresses.txt beside this file: Moscow addresses in the usual
formats (issue 23's corpus), deterministic (a fixed seed), no network.

Each line: the address, a tab, the street's distinctive word (what an SMS
must still show the start of), a tab, the house number (what it must show
whole). Run it again after changing the lists: python3 gen_addresses.py
"""

import random
from pathlib import Path

# (name, type): real-looking Moscow streets; the type as the street is
# usually written. The distinctive word is the first one that is not a
# modifier (Большая, 1-я…).
STREETS = [
    ("Тверская", "ул."), ("Новый Арбат", "ул."), ("Кутузовский", "пр."),
    ("Ленинский", "пр."), ("Мира", "пр."), ("Вернадского", "пр."),
    ("Ленинградский", "пр."), ("Большая Никитская", "ул."),
    ("Малая Бронная", "ул."), ("Покровка", "ул."), ("Мясницкая", "ул."),
    ("Пятницкая", "ул."), ("Большая Якиманка", "ул."),
    ("1-я Тверская-Ямская", "ул."), ("2-я Брестская", "ул."),
    ("Садовая-Кудринская", "ул."), ("Земляной Вал", "ул."),
    ("Варшавское", "ш."), ("Каширское", "ш."), ("Дмитровское", "ш."),
    ("Щёлковское", "ш."), ("Энтузиастов", "ш."), ("Рублёвское", "ш."),
    ("Хорошёвское", "ш."), ("Волоколамское", "ш."), ("Алтуфьевское", "ш."),
    ("Гоголевский", "б-р"), ("Тверской", "б-р"), ("Чистопрудный", "б-р"),
    ("Страстной", "б-р"), ("Цветной", "б-р"), ("Мичуринский", "пр."),
    ("Комсомольский", "пр."), ("Большой Козихинский", "пер."),
    ("Кривоколенный", "пер."), ("Армянский", "пер."),
    ("Малый Златоустинский", "пер."), ("Староконюшенный", "пер."),
    ("Сивцев Вражек", "пер."), ("Большой Саввинский", "пер."),
    ("Малый Каретный", "пер."), ("Манежная", "пл."), ("Славянская", "пл."),
    ("Суворовская", "пл."), ("Тверская Застава", "пл."),
    ("Краснопресненская", "наб."), ("Пречистенская", "наб."),
    ("Фрунзенская", "наб."), ("Берсеневская", "наб."),
    ("Садовническая", "наб."), ("Театральный", "пр-д"), ("Ясный", "пр-д"),
    ("Профсоюзная", "ул."), ("Люблинская", "ул."), ("Новослободская", "ул."),
    ("Бутырская", "ул."), ("Маросейка", "ул."), ("Ильинка", "ул."),
    ("Никольская", "ул."), ("Петровка", "ул."), ("Большая Дмитровка", "ул."),
    ("Неглинная", "ул."), ("Сретенка", "ул."), ("Остоженка", "ул."),
    ("Пречистенка", "ул."), ("Кузнецкий Мост", "ул."),
    ("Большая Семёновская", "ул."), ("Академика Королёва", "ул."),
    ("Маршала Жукова", "пр."), ("Генерала Белобородова", "ул."),
    ("Народного Ополчения", "ул."), ("Героев Панфиловцев", "ул."),
    ("Свободы", "ул."), ("Зелёный", "пр."), ("Волгоградский", "пр."),
    ("Рязанский", "пр."), ("Севастопольский", "пр."), ("Нахимовский", "пр."),
    ("Андропова", "пр."), ("Новоясеневский", "пр."),
    ("Старокачаловская", "ул."), ("Красноказарменная", "ул."),
    ("Верхняя Красносельская", "ул."), ("Нижняя Сыромятническая", "ул."),
    ("Маршала Василевского", "ул."), ("Большая Черкизовская", "ул."),
    ("Краснобогатырская", "ул."), ("Электрозаводская", "ул."),
    ("Новокузнецкая", "ул."), ("Зацепский Вал", "ул."),
]
MODIFIERS = {"Большая", "Большой", "Малая", "Малый", "Верхняя", "Нижняя",
             "Новый", "1-я", "2-я"}
FULL = {"ул.": "улица", "пр.": "проспект", "пер.": "переулок", "ш.": "шоссе",
        "б-р": "бульвар", "пл.": "площадь", "наб.": "набережная",
        "пр-д": "проезд"}
MALLS = ["Океания", "Авиапарк", "Европейский", "Атриум", "Мега Белая Дача",
         "Афимолл Сити", "Метрополис", "Ривьера", "Капитолий", "Охотный Ряд",
         "Вегас Кунцево", "Гагаринский", "Райкин Плаза", "Город Лефортово"]
CENTRES = ["ТЦ", "ТРЦ", "ТРК", "БЦ", "ТК"]


def key_of(name):
    return next(w for w in name.split() if w not in MODIFIERS)


def street_forms(name, kind, rnd):
    """The street as people write it: type first or last, short or full."""
    full = FULL[kind]
    return rnd.choice([
        f"{kind} {name}", f"{name} {kind}", f"{full} {name}",
        f"{name} {full}", f"{name} {kind}",
    ])


def main():
    rnd = random.Random(23)
    lines = []
    while len(lines) < 1200:
        name, kind = rnd.choice(STREETS)
        street = street_forms(name, kind, rnd)
        number = str(rnd.choice([rnd.randint(1, 40), rnd.randint(1, 180)]))
        if rnd.random() < 0.12:
            number += rnd.choice("АБВ")
        elif rnd.random() < 0.06:
            number += f"/{rnd.randint(1, 12)}"
        korp, stroy = rnd.randint(1, 9), rnd.randint(1, 14)
        mall = f"{rnd.choice(CENTRES)} «{rnd.choice(MALLS)}»"
        shape = rnd.randint(0, 15)
        house = {
            0: f"д. {number}",
            1: f"д.{number}",
            2: f"дом {number}",
            3: f"{number}",
            4: f"д. {number}, корп. {korp}",
            5: f"д. {number}, стр. {stroy}",
            6: f"д. {number}, корп. {korp}, стр. {stroy}",
            7: f"д. {number} корп. {korp}",
            8: f"влд. {number}",
            9: f"вл. {number}, стр. {stroy}",
            10: f"владение {number}, строение {stroy}",
            11: f"д. {number}к{korp}",
            12: f"дом {number}, корпус {korp}",
            13: f"д. {number}, стр. {stroy}",
            14: f"д. {number}",
            15: f"{number}, корп. {korp}",
        }[shape]
        # The house number an SMS must show: the compact `37к9` still holds
        # `37`; a written-out number is shown as written.
        shown = number
        prefix = rnd.choice(["", "", "", "г. Москва, ", "Москва, ",
                             f"1{rnd.randint(0, 2)}{rnd.randint(1000, 9999)}, г. Москва, "])
        after = rnd.choice(["", "", "", f", {mall}", f", {mall}, {rnd.randint(1, 5)} этаж",
                            f", подъезд {rnd.randint(1, 8)}", f", офис {rnd.randint(1, 999)}",
                            f", эт. {rnd.randint(1, 25)}, пом. {rnd.choice(['I', 'II', 'IV'])}",
                            ", вход со двора"])
        before = f"{mall}, " if rnd.random() < 0.05 else ""
        address = f"{before}{prefix}{street}, {house}{after}"
        lines.append(f"{address}\t{key_of(name)}\t{shown}")
    out = Path(__file__).with_name("addresses.txt")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
