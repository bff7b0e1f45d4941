"""Which language an SMS is written in: Russian, Kazakh, both, English, or Russian / Kazakh in
Latin letters. Fast (a few µs), no model, no dependency: letters and a few hundred function
words and endings decide, which is enough for SMS-length texts and testable line by line.

    language("Сіздің картаңыз бұғатталды")           -> "kk"
    language("Ваша карта заблокирована")             -> "ru"
    language("Сәлем! Мама, я задержусь")              -> "mixed"
    language("Operaciya po karte 5**9835, Ostatok")  -> "translit"
    language("Sizdiń kartańyz buǵattaldy")           -> "translit"  (Kazakh Latin, 2021)
    language("Your parcel is waiting")               -> "en"
    language("12345 :)")                             -> "none"

Used to report detection per language (`fraudgate eval`) and as a feature of the text
classifier (a `zzlang_*` token), so that Kazakh and Russian messages are not judged by each
other's vocabulary alone.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final, Literal

Lang = Literal["ru", "kk", "mixed", "en", "translit", "none"]
LANGS: Final[tuple[Lang, ...]] = ("ru", "kk", "mixed", "en", "translit", "none")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_WORD: Final = re.compile(r"[^\W\d_]+", re.UNICODE)
_KK_LETTERS: Final = frozenset("әғқңөұүһіӘҒҚҢӨҰҮҺІ")
# Kazakh Latin (2021 alphabet: á ǵ ı ń ó ú ý; 2018's apostrophes are handled as plain letters)
_KK_LATIN: Final = frozenset("áǵıńóúýğşçÁǴŃÓÚÝäöüÄÖÜĞŞÇ")

# Function words and frequent short words. Only words that are NOT also common in the other
# language: "и", "в", "на" are Russian; "мен", "бар", "да" would be ambiguous ("да" is Russian
# "yes" too) and are left out.
_RU_WORDS: Final = _words(
    """
    и в во на не что по для вы вас вам ваш ваша ваше вашей вашу ваши с со от за к ко из это
    этот эта то как но или если уже ещё еще так же бы был была было были будет будут нет
    есть он она они мы я мне меня мой моя мое моё тебе тебя ты твой при до после через о об
    про у все всё всем вот только когда где кто чем чтобы этого этой этом их его ее её нам
    нас пожалуйста просим срочно сегодня завтра сейчас деньги деньгами счет счёт код карта
    карты картой банк банка номер номера телефон сообщение сообщите перейдите ссылке по
    ссылке получите получили вам оплатите уважаемый уважаемая клиент клиента
    """
)
_KK_WORDS: Final = _words(
    """
    және үшін сіз сізге сіздің сізді біз біздің мен мені маған менің сен саған сенің ол оның
    бұл осы сол қазір бүгін ертең кейін арқылы туралы бойынша немесе бірақ өтінеміз құрметті
    жоқ емес болады болды бар ма ме ба бе па пе керек қажет тез ақша ақшаны шот шотқа
    шотыңыз картаңыз картаңызға кодты коды нөмір нөмірі нөміріңіз сілтеме сілтемеге
    хабарласыңыз жіберіңіз айтыңыз беріңіз келді келеді рахмет сәлем салем жақсы ия иә
    жарайды керемет отініш өтініш дәрігер қосымша өте тамаша
    """
)
_FOLD_KK: Final = str.maketrans("әғқңөұүһі", "агкноууhи")
# Kazakh written without its special letters ("жаксы", "отиниш"), as people often type it;
# forms that are also Russian words are left out.
_KK_FOLDED: Final = (
    frozenset(w.translate(_FOLD_KK) for w in _KK_WORDS)
    - _RU_WORDS
    - {"бар", "мен", "ма", "ме", "ба", "бе", "па", "пе", "сол", "осы", "ол", "кодты"}
)
# Endings that mark Kazakh words written without special letters ("картасы", "шотына").
_KK_ENDING: Final = re.compile(
    r"(?:ның|нің|дың|дің|тың|тің|ға|ге|қа|ке|ғы|гі|дағы|дегі|тағы|тегі|лар|лер|дар|дер|тар|тер"
    r"|ымыз|іміз|ңыз|ңіз|сыз|сіз|мыз|міз|уға|уге|ды|ді|ты|ті)$"
)
_RU_ENDING: Final = re.compile(
    r"(?:ого|его|ому|ему|ыми|ими|ться|тся|ешь|ете|ите|ость|ение|ания|ения|ный|ной|ная|ное|ные"
    r"|ский|ская|ское|ских|ого|ует|уют|ает|яет|ался|ался|ать|ять|ить|ыть)$"
)
_EN_WORDS: Final = _words(
    """
    the a an and or of to in on for from with your you yours is are was were be been will
    this that these those it its we our us please click here now today free win won prize
    call text reply stop code verify account bank card parcel delivery order dear customer
    has have had not no yes my me i he she they them what when where how who
    """
)
# Russian and Kazakh transliterated: frequent words of bank / service SMS and chat.
_TRANSLIT_WORDS: Final = _words(
    """
    po na karte karty kartu kartochke summa summu summy ostatok dostupno dostupnaya oplata
    pokupka pokupki operaciya operatsiya operacii spisanie zachislenie perevod popolnenie
    scheta schet schetu balans vash vasha vam vashego kod kodu parol privet spasibo
    pozhaluysta segodnya zavtra seychas deneg dengi nomer tel dlya ot ne chto eto uzhe kak
    gde kogda srochno zaklyuchen vydacha nalichnyh uspeshno otklonena otkaz limit kredit
    zaem siz sizge sizdin sizdiń sizdin kody kartasy karta tolem tólem alu satyp shot shotty
    qurmetti kurmetti aksha aqsha habarlasynyz jiberiniz kerek bugin rahmet salem popolnenie
    popoln nalichnye nalichnyh platezh platezha vhod vypolnen voshli prilozhenie snyatie
    postupil beznal bal uspeshno dolg zadolzhennost oplatite kartschet kartu dengi vashu
    vashey spisano zachisleno poluchen otpravlen otmena oplaty komissiya kartoi karta
    debitnaja chast perevoda cherez mesto ostatka dostupnyy limit zaem zayavka
    """
)


_URL: Final = re.compile(r"https?://\S+|www\.\S+|@\w+")
# what one word says: (cyrillic words, latin words, kk, ru, en, translit); all-caps Latin
# words are counted apart (see below)
_Votes = tuple[int, int, float, float, float, float]


@lru_cache(maxsize=65536)
def _vote(raw: str) -> tuple[_Votes, bool]:
    """One word's evidence, and whether it is an all-caps ASCII word that says nothing when
    the text has lower case (a merchant, a currency, a brand)."""
    w = raw.lower()
    if _is_cyrillic(w):
        if any(c in _KK_LETTERS for c in w) or w in _KK_WORDS or w in _KK_FOLDED:
            return (1, 0, 1.0, 0.0, 0.0, 0.0), False
        if w in _RU_WORDS or (len(w) > 4 and _RU_ENDING.search(w)):
            return (1, 0, 0.0, 1.0, 0.0, 0.0), False
        if len(w) > 4 and _KK_ENDING.search(w):
            return (1, 0, 0.5, 0.0, 0.0, 0.0), False
        return (1, 0, 0.0, 0.0, 0.0, 0.0), False
    if w in _TRANSLIT_WORDS or any(c in _KK_LATIN for c in w) or _KK_Q.search(w):
        return (0, 1, 0.0, 0.0, 0.0, 1.0), False
    caps = raw.isupper() and raw.isascii()
    return (0, 1, 0.0, 0.0, float(w in _EN_WORDS), 0.0), caps


@lru_cache(maxsize=16384)
def language(text: str) -> Lang:
    """The language of `text` (see the module's docstring)."""
    text = text[:1000]
    if "http" in text or "www." in text or "@" in text:  # links and handles: not language
        text = _URL.sub(" ", text)
    words = _WORD.findall(text)
    if not words:
        return "none"
    # Upper-case Latin words in a text that has lower case are merchants, currencies and
    # brands ("YANDEX.GO", "KZT"): no evidence of the language the text is written in.
    has_lower = any(w != w.upper() for w in words)
    cyr = lat = 0
    kk = ru = en = tr = 0.0
    for raw in words:
        (c, la, k, r, e, t), caps = _vote(raw)
        if caps and has_lower:
            continue
        cyr += c
        lat += la
        kk += k
        ru += r
        en += e
        tr += t
    if cyr and (cyr >= lat or ru + kk >= 1):
        if kk >= 1 and ru >= 1 and min(kk, ru) >= 0.25 * max(kk, ru):
            return "mixed"
        if kk > ru:
            return "kk"
        return "ru"
    if tr > en:
        return "translit"
    if en > 0:
        return "en"
    return "translit" if _looks_translit(words) else "en"


def _is_cyrillic(word: str) -> bool:
    return any("\u0400" <= c <= "\u04ff" for c in word)


_KK_Q: Final = re.compile(r"q(?!u)")  # Kazakh Latin writes қ as q ("jaqsy", "aqsha")
_TRANSLIT_SHAPE: Final = re.compile(r"(?:zh|kh|sch|shch|ya|yu|iy|yy|ogo|aya|oye|nyy)")


def _looks_translit(words: list[str]) -> bool:
    hits = sum(1 for w in words if _TRANSLIT_SHAPE.search(w.lower()))
    return hits * 3 >= len(words)
