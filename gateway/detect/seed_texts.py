"""The project's own training texts for the default text classifier (`ClassifierDetector.default`).

Everything here was written for fraudgate: no dataset was copied, and none of the test traffic of
`config/scenarios/` (training on the texts the gateway is scored on would be leakage). Templates
in Russian, Kazakh and English:

* ham: everyday person-to-person chat, and legitimate A2P notifications (taxi, delivery, bank
  one-time codes and card notices, eGov codes, Kazpost notices, operators, clinics, tickets),
  some of which mention codes, cards and links the way real senders do, so that the model learns
  the difference between "here is your code, tell nobody" and "tell us the code";
* fraud: the smishing themes of Kazakhstan (shared/domain/KAZAKHSTAN.md): card blocked, "safe
  account", requests for SMS / 1414 codes, Kazpost parcel fees, prizes and bonuses, fake police,
  KNB, National Bank and bank security staff, loans "taken in your name", fake eGov / Qoldau /
  Uchet / Kaspi notices, investment and crypto offers, "like for money" jobs, "mum, I'm in
  trouble" messages.

`builtin_corpus()` fills each template's placeholders several times with a seeded generator
(`{fake_url}`: invented look-alike hosts; `{amount}`, `{code6}`, `{phone}`...), so the corpus is
the same on every machine and every run.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Final

SEED: Final = 20250722
VARIANTS: Final = 4  # filled copies of each template

# --------------------------------------------------------------------------------------------
# Placeholder values

_NAMES_RU: Final = (
    "Айгерим",
    "Данияр",
    "Асель",
    "Ерлан",
    "Марина",
    "Сергей",
    "Алия",
    "Тимур",
    "Ольга",
    "Нурлан",
    "Дина",
    "Арман",
    "Жанна",
    "Игорь",
    "Камила",
    "Бауыржан",
)
_NAMES_EN: Final = ("Alex", "Sam", "Kate", "John", "Emma", "Daniel", "Lisa", "Mark", "Anna", "Tom")
_SHOPS: Final = (
    "Magnum",
    "Small",
    "Galmart",
    "Sulpak",
    "Technodom",
    "Mechta",
    "Arbuz.kz",
    "Fix Price",
    "Sinooil",
    "Meloman",
    "Yandex Lavka",
    "Spar",
)
_STREETS: Final = (
    "Абая",
    "Достык",
    "Сатпаева",
    "Толе би",
    "Аль-Фараби",
    "Жандосова",
    "Кабанбай батыра",
    "Туран",
    "Кенесары",
    "Розыбакиева",
)
_CITIES: Final = (
    "Алматы",
    "Астана",
    "Шымкент",
    "Караганда",
    "Актобе",
    "Павлодар",
    "Атырау",
    "Костанай",
    "Усть-Каменогорск",
    "Тараз",
)
_CITIES_EN: Final = ("Almaty", "Astana", "Shymkent", "Aktau", "Atyrau", "Istanbul", "Dubai")
_CARS: Final = (
    "белая Hyundai Accent",
    "серая Kia Rio",
    "чёрная Toyota Camry",
    "серебристый Chevrolet Cobalt",
    "белая Lada Granta",
    "синий Volkswagen Polo",
)
_CARS_KK: Final = (
    "ақ Hyundai Accent",
    "сұр Kia Rio",
    "қара Toyota Camry",
    "күміс түсті Chevrolet Cobalt",
    "ақ Lada Granta",
)
_CARS_EN: Final = (
    "white Hyundai Accent",
    "grey Kia Rio",
    "black Toyota Camry",
    "silver Chevrolet Cobalt",
)
_BANKS: Final = (
    "Kaspi",
    "Halyk",
    "Jusan",
    "Forte",
    "BCC",
    "Freedom Bank",
    "Bereke",
    "Home Credit",
    "Eurasian Bank",
    "Otbasy",
)
_TARIFFS: Final = ("Безлимит", "Супер", "Выгодный", "Семейный", "Onlime", "Smart")
_RESTAURANTS: Final = ("Del Papa", "Navat", "Rumi", "Kishlak", "Tomato", "Line Brew")
_MESSENGERS: Final = ("@invest_pro_kz", "@crypto_signals_777", "@easy_money_kz", "@bonus_helper")
# Invented look-alike and throw-away hosts (none is the test traffic's).
_FAKE_HOSTS: Final = (
    "kaspi-kz.support",
    "kaspi.verify-client.com",
    "kaspi-gold.click",
    "halyk-online.help",
    "homebank.kz-login.net",
    "halyk.bonus-kz.live",
    "jusan-prize.xyz",
    "bcc-bonus.club",
    "egov-portal.info",
    "egov.kz-service.site",
    "egov-ecp.online",
    "kazpost-track.shop",
    "post.kz-parcel.info",
    "kazpost.pay-fee.top",
    "qoldau-kz.com",
    "uchet-kz.info",
    "nationalbank-kz.org",
    "olx-kz.pay-safe.net",
    "kolesa-deal.site",
    "tax-refund-kz.com",
    "bit.ly",
    "clck.ru",
    "tinyurl.com",
    "gift-kz.win",
    "crypto-ai-profit.io",
    "kz-invest.pro",
)
_SITES: Final = (
    "Krisha.kz",
    "Kolesa.kz",
    "OLX.kz",
    "Arbuz.kz",
    "Kaspi.kz",
    "Aviata.kz",
    "Chocofamily.kz",
    "Wildberries.kz",
    "Lamoda.kz",
    "Market.kz",
)
_REAL_URLS: Final = (
    "kaspi.kz",
    "halykbank.kz",
    "egov.kz",
    "post.kz/tracking",
    "homebank.kz",
    "kcell.kz",
    "beeline.kz",
    "jusan.kz",
    "bcc.kz",
    "https://kaspi.kz/shop",
)


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _amount(rng: random.Random) -> str:
    value = rng.choice(
        (
            500,
            1500,
            2500,
            4990,
            12000,
            15000,
            25000,
            48500,
            75000,
            120000,
            150000,
            250000,
            350000,
            500000,
            1200000,
            2000000,
        )
    )
    text = f"{value:,}".replace(",", rng.choice((" ", " ", "")))
    return text


def _phone(rng: random.Random) -> str:
    op = rng.choice(("701", "702", "705", "707", "708", "747", "771", "775", "777", "778"))
    a, b, c = _digits(rng, 3), _digits(rng, 2), _digits(rng, 2)
    return rng.choice(
        (f"+7 {op} {a} {b} {c}", f"8 ({op}) {a}-{b}-{c}", f"8{op}{a}{b}{c}", f"+7{op}{a}{b}{c}")
    )


def _fake_url(rng: random.Random) -> str:
    host = rng.choice(_FAKE_HOSTS)
    path = rng.choice(
        (
            "",
            "/login",
            "/verify",
            "/card",
            "/bonus",
            "/pay",
            "/kz",
            "/id",
            "/track",
            "/prize",
            "/" + _token(rng, 6),
        )
    )
    if host in ("bit.ly", "clck.ru", "tinyurl.com"):
        path = "/" + _token(rng, 7)
    return rng.choice(("https://", "http://", "")) + host + path


def _token(rng: random.Random, n: int) -> str:
    return "".join(
        rng.choice("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(n)
    )


def _track(rng: random.Random) -> str:
    return rng.choice(("RR", "CP", "EE", "LP", "UA")) + _digits(rng, 9) + rng.choice(("KZ", "CN"))


def _pick(values: tuple[str, ...]) -> Callable[[random.Random], str]:
    return lambda rng: rng.choice(values)


_SLOTS: Final[dict[str, Callable[[random.Random], str]]] = {
    "name": _pick(_NAMES_RU),
    "name_en": _pick(_NAMES_EN),
    "initial": lambda rng: rng.choice("АБДЕЖКМНОСТ") + ".",
    "shop": _pick(_SHOPS),
    "street": _pick(_STREETS),
    "city": _pick(_CITIES),
    "city2": _pick(_CITIES),
    "city_en": _pick(_CITIES_EN),
    "car": _pick(_CARS),
    "car_kk": _pick(_CARS_KK),
    "car_en": _pick(_CARS_EN),
    "bank": _pick(_BANKS),
    "tariff": _pick(_TARIFFS),
    "restaurant": _pick(_RESTAURANTS),
    "tg": _pick(_MESSENGERS),
    "amount": _amount,
    "amount2": _amount,
    "code4": lambda rng: _digits(rng, 4),
    "code6": lambda rng: _digits(rng, 6),
    "card4": lambda rng: _digits(rng, 4),
    "order": lambda rng: _digits(rng, rng.choice((7, 8, 9))),
    "track": _track,
    "index": lambda rng: "0" + _digits(rng, 5),
    "min": lambda rng: str(rng.randint(2, 25)),
    "time": lambda rng: f"{rng.randint(8, 21)}:{rng.choice(('00', '15', '30', '45'))}",
    "date": lambda rng: f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}",
    "room": lambda rng: str(rng.randint(101, 420)),
    "seat": lambda rng: str(rng.randint(1, 54)),
    "wagon": lambda rng: str(rng.randint(1, 16)),
    "flight": lambda rng: _digits(rng, 3),
    "plate": lambda rng: f"{_digits(rng, 3)} {_token(rng, 3).upper()} {rng.randint(1, 18):02d}",
    "phone": _phone,
    "fake_url": _fake_url,
    "real_url": _pick(_REAL_URLS),
    "site": _pick(_SITES),
}

# --------------------------------------------------------------------------------------------
# Templates

HAM: Final[dict[str, tuple[str, ...]]] = {
    "ru": (
        # everyday chat
        "Привет! Ты сегодня во сколько освободишься?",
        "Я уже подъезжаю, спускайся минут через {min}",
        "Не могу говорить, перезвоню после совещания",
        "Купи, пожалуйста, молоко и яйца по дороге домой",
        "Скинь фотки с выходных, когда будет минутка",
        "Встречаемся у входа в {shop} в {time}",
        "Спасибо большое, очень выручил!",
        "Как доехал? Напиши, когда будешь дома",
        "{name}, с днём рождения! Здоровья, любви и удачи во всём",
        "Мам, я у {name}, приду к {time}",
        "Завтра в {time} планёрка, не опаздывай",
        "Сможешь забрать детей из школы? Я до {time} на работе",
        "Отправил тебе {amount} тг за обед, проверь",
        "Видел вчерашний матч? Вот это была игра",
        "Поехали на выходных в горы, обещают солнце",
        "Стою в пробке на {street}, задержусь минут на двадцать",
        "Сколько примерно будет стоить ремонт? Скажи хотя бы порядок цен",
        "Телефон садится, пиши лучше в WhatsApp",
        "Доброе утро! Не забудь взять паспорт и справку",
        "Хорошо, договорились. До завтра",
        "Ключи оставила у соседки на третьем этаже",
        "Сегодня ужинаем у бабушки, приходите к семи",
        "Ты где? Мы уже все собрались у подъезда",
        "Верни, пожалуйста, {amount} тг до пятницы, очень надо",
        "Записала тебя к стоматологу на {date}, в {time}",
        "Купил билеты в кино на {time}, не опаздывай",
        "Какой код от домофона? Забыл",
        "Папа, у меня всё хорошо, сдала экзамен на отлично!",
        "Посылку забрал, спасибо, всё целое",
        "Давай созвонимся вечером, есть разговор",
        "Мы в {city}, погода отличная, вернёмся {date}",
        "Напомни, во сколько завтра родительское собрание?",
        "Перевела тебе на Kaspi {amount}, посмотри, дошло?",
        "Деньги за подарок скинула на каспи, отметь в чате",
        "Ага, понял, спасибо",
        "Сегодня не получится, давай завтра",
        "Как дела? Давно не виделись",
        "Позвони, когда сможешь, надо кое-что обсудить",
        "Ужин на плите, разогрей",
        "Я скоро, уже выхожу",
        "Поможешь в субботу с переездом?",
        "Скидываемся на подарок учительнице по 2000",
        "Посмотри погоду на завтра, брать зонт?",
        "Отличная новость! Поздравляю!",
        "У нас отключили воду до вечера",
        "Сын заболел, сегодня работаю из дома",
        "Не забудь оплатить садик",
        "Пришли номер мастера, который чинил кран",
        "Спасибо за вечер, всё было очень вкусно",
        "Едем к вам, будем через час",
        "Забыл зарядку дома, можно взять твою?",
        "Купи корм коту, пожалуйста",
        "Я записался на курсы английского",
        "Во сколько начинается концерт?",
        "Верну долг сегодня вечером через Kaspi, не переживай",
        "Посмотри квартиру на {site}, по-моему неплохой вариант",
        "Заказала продукты на {site}, привезут к {time}",
        "Нашёл диван на {site}, съездим вечером посмотреть?",
        # legitimate A2P
        "Ваш код подтверждения: {code6}. Никому не сообщайте этот код, даже сотрудникам банка",
        "{bank}: покупка {amount} ₸, {shop}. Доступно {amount2} ₸",
        "{bank}: пополнение счёта на {amount} ₸. Баланс {amount2} ₸",
        "Kaspi.kz: {name} {initial} перевел(а) вам {amount} ₸",
        "Код для входа в Kaspi.kz: {code4}. Не сообщайте его никому",
        "eGov: код подтверждения {code6}. Сотрудники госорганов и банков никогда не спрашивают код",
        "Ваш заказ №{order} принят. Доставим {date} с 10:00 до 14:00",
        "Курьер привезёт заказ №{order} сегодня до 18:00. Оплата картой или наличными",
        "Казпочта: отправление {track} поступило в отделение {index}. При себе иметь удостоверение",
        "Казпочта: отправление {track} вручено. Спасибо, что пользуетесь нашими услугами",
        "Отследить отправление {track} можно на {real_url}",
        "Машина подъехала: {car}, {plate}. Водитель ждёт 3 минуты бесплатно",
        "Водитель {name} будет через {min} мин: {car}, номер {plate}",
        "Вы записаны к терапевту на {date} в {time}, кабинет {room}. Отменить запись: 1414",
        "Уважаемый абонент! Ваш баланс {amount} тг. Пополнить можно в приложении оператора",
        "Подключен тариф «{tariff}». Абонентская плата {amount} тг в месяц",
        "Напоминаем: оплатить интернет нужно до {date}. Сумма к оплате {amount} тг",
        "Билет: {city} — {city2}, {date}, вагон {wagon}, место {seat}. Счастливого пути!",
        "Рейс KC{flight} {city} — {city2} {date}: онлайн-регистрация открыта",
        "{bank}: новая карта *{card4} готова, получите её в отделении с {date}",
        "{bank}: вход в приложение с нового устройства {date} в {time}. Если это не вы, "
        "позвоните по номеру на обороте карты",
        "Ваш заказ из {shop} передан курьеру. Статус доставки смотрите в приложении",
        "Оцените поездку и получите скидку на следующую: {real_url}",
        "Школа: {date} в {time} родительское собрание, кабинет {room}",
        "{bank}: платёж по кредиту {amount} ₸ спишется {date}. Пополните счёт заранее",
        "Ваша заявка №{order} на подключение интернета принята, мастер позвонит заранее",
        "Будьте бдительны: сотрудники банка никогда не просят код из SMS. {bank}",
        "Счёт за коммунальные услуги: {amount} тг, оплатить до {date}. Подробнее на {real_url}",
        "Ваша карта *{card4}: оплата {amount} ₸, {shop}",
        "ЦОН: ваше удостоверение личности готово, получите его в ЦОН, где подавали заявление",
        "eGov: заявка №{order} исполнена, справка доступна в личном кабинете",
        "Платёж {amount} тг за коммунальные услуги принят. Спасибо!",
        "Напоминаем: показания счётчиков нужно передать до {date}",
        "Посылка {track} доставлена в постамат. Код получения {code6}",
        "Доставка из {shop}: курьер {name} позвонит за 30 минут до приезда",
        "Пароль успешно изменён. Если это были не вы, напишите в поддержку в приложении",
        "{shop}: скидки до 30% на технику до воскресенья. Ждём вас!",
        "Кешбэк 10% в {shop} по карте {bank} весь месяц",
    ),
    "kk": (
        "Сәлем! Қалың қалай? Ертең кездесейік",
        "Кешіріңіз, қазір сөйлесе алмаймын, кейін хабарласамын",
        "Дүкенге барсаң, сүт пен нан ала келші",
        "Туған күнің құтты болсын, {name}! Бақытты бол!",
        "Балаларды мектептен алып кетесің бе? Мен жұмыстамын",
        "Көп рахмет, үлкен көмек болды!",
        "Ертең сағат {time}-да жиналыс, кешікпе",
        "Үйге жеттің бе? Жазып жібер",
        "Демалыста тауға барамыз ба?",
        "Саған {amount} теңге аудардым, түскі асқа",
        "Кептелісте тұрмын, сәл кешігемін",
        "Жақсы, келістік. Ертеңге дейін",
        "Апа, сабақтан шықтым, үйге бара жатырмын",
        "Ертең күн суық болады дейді, жылы киін",
        "Кітапты кітапханаға қайтаруды ұмытпа",
        "Қайдасың? Бәріміз жиналып қалдық",
        "Қайырлы таң! Құжаттарды алуды ұмытпа",
        "Кешкі асқа әжемдікіне барамыз, жетіге қарай кел",
        "Телефоным отырып қалды, WhatsApp-қа жаз",
        "Дәрігерге {date} күні сағат {time}-ға жазылдым",
        "Емтиханды жақсы тапсырдым, уайымдамаңдар!",
        "Кешке хабарласайық, айтатын әңгіме бар",
        "Біз {city}-дамыз, {date} қайтамыз",
        "Сәлемдемені алдым, рахмет, бәрі аман",
        "Каспиға {amount} теңге салып қойдым, келді ме?",
        "Қарызымды қайтардым, Kaspi-ді тексерші",
        "Иә, түсіндім, рахмет",
        "Бүгін үлгермеймін, ертең кездесейік",
        "Қалайсың? Көптен көрмедік",
        "Уақытың болса қоңырау шал, ақылдасатын шаруа бар",
        "Тамақ плитада, жылытып іш",
        "Қазір шығамын, күте тұр",
        "Сенбіде көшуге көмектесесің бе?",
        "Мұғалімге сыйлыққа 2000 теңгеден жинаймыз",
        "Ертең жаңбыр жауа ма? Қолшатыр алайын ба?",
        "Керемет жаңалық! Құттықтаймын!",
        "Бүгін кешке дейін су жоқ",
        "Балам ауырып қалды, үйден жұмыс істеймін",
        "Балабақшаның ақысын төлеуді ұмытпа",
        "Кранды жөндеген шебердің нөмірін жіберші",
        "Кешкі асқа рахмет, бәрі дәмді болды",
        "Сендерге бара жатырмыз, бір сағатта жетеміз",
        "Зарядтағышымды үйде ұмытып кетіппін",
        "Мысыққа тамақ ала келші",
        "Ағылшын тілі курсына жазылдым",
        "Концерт нешеде басталады?",
        "Сыйлыққа ақша жинаймыз, Kaspi Gold-қа {amount} ₸ салыңдар",
        "{site}-тан көлік қарап жүрмін, кешке көрсетемін",
        "Азық-түлікті {site} арқылы тапсырыс бердім",
        "{site}-та жақсы пәтер бар екен, сілтемесін жіберейін бе?",
        # legitimate A2P
        "Растау коды: {code6}. Бұл кодты ешкімге айтпаңыз, банк қызметкерлеріне де",
        "{bank}: {shop} дүкенінде {amount} ₸ сатып алу. Қолжетімді: {amount2} ₸",
        "{bank}: шотыңыз {amount} ₸ толықтырылды. Қалдық {amount2} ₸",
        "Kaspi.kz: {name} {initial} сізге {amount} ₸ аударды",
        "Тапсырысыңыз №{order} қабылданды. Жеткізу күні: {date}",
        "Қазпошта: {track} жөнелтілімі {index} бөлімшесіне келді. Жеке куәлігіңізді ала келіңіз",
        "Жүргізуші {min} минутта келеді: {car_kk}, {plate}",
        "eGov: растау коды {code6}. Кодты ешкімге хабарламаңыз",
        "Балансыңыз: {amount} теңге. Толықтыру оператордың қосымшасында",
        "Дәрігер қабылдауы: {date}, сағат {time}, {room} кабинет",
        "Пойыз билеті: {city} – {city2}, {date}, {wagon}-вагон, {seat}-орын",
        "Құрметті абонент! {date} дейін интернет үшін {amount} теңге төлеңіз",
        "Кіру коды: {code4}. Ешкімге бермеңіз",
        "Тапсырысыңыз №{order} курьерге берілді, бүгін жеткізіледі",
        "{bank}: жаңа *{card4} картаңыз дайын, оны {date} бастап бөлімшеден алыңыз",
        "Абайлаңыз: банк қызметкерлері ешқашан SMS-кодты сұрамайды. {bank}",
        "Мектеп: {date} сағат {time}-да ата-аналар жиналысы, {room} кабинет",
        "Коммуналдық қызметтер шоты: {amount} теңге, {date} дейін төлеу. Толығырақ: {real_url}",
        "Сапарыңызды бағалаңыз: {real_url}",
        "{bank}: несие бойынша {amount} ₸ төлем {date} күні шегеріледі",
        "ХҚКО: жеке куәлігіңіз дайын, оны өтініш берген орталықтан алыңыз",
        "eGov: №{order} өтініміңіз орындалды, құжат жеке кабинетте",
        "Коммуналдық қызметтер үшін {amount} теңге төлем қабылданды. Рахмет!",
        "Есептегіш көрсеткіштерін {date} дейін беріңіз",
        "Сәлемдемеңіз {track} постаматқа жеткізілді. Алу коды: {code6}",
        "{shop}: жексенбіге дейін барлық тауарға 20% жеңілдік",
        "Құпиясөзіңіз өзгертілді. Бұл сіз болмасаңыз, қосымшадағы қолдау қызметіне жазыңыз",
        "*{card4} картасы: {shop}, {amount} ₸ төленді",
    ),
    "en": (
        "Hey, are you free later? Fancy a coffee?",
        "Running about {min} minutes late, sorry!",
        "Can you pick up some milk on your way home?",
        "Thanks for yesterday, had a great time",
        "Call me when you land",
        "The meeting is at {time} in room {room}",
        "Happy birthday {name_en}! Hope you have a wonderful day",
        "I'm outside, come down when you're ready",
        "Did you watch the game last night? Unreal ending",
        "Let's go hiking this weekend if the weather holds",
        "Sent you {amount} tenge for the tickets",
        "Where are you? We're all at the entrance",
        "Good morning! Don't forget your passport",
        "Ok, see you tomorrow then",
        "Landed in {city_en}, heading to the hotel now",
        "Can you send me the address again?",
        "Just sent you {amount} on Kaspi for the pizza",
        "r u coming 2nite? bring ur charger pls",
        "lol that was so funny, can't stop laughing",
        "ok i'll call u when i'm done",
        "Sorry, can't talk now. Text you later",
        "What time does the shop close?",
        "haha yes!! see you there",
        "So tired today, going to bed early",
        "nvm found it, thanks",
        "Is it raining where you are?",
        "Miss you, come visit soon",
        "Got the tickets! Row 12, seats 5 and 6",
        "Don't forget it's mum's birthday on Sunday",
        "How much do I owe you for dinner?",
        "Shall we meet at the usual place?",
        "Thanks so much, you're a star",
        "Can't find my keys, did I leave them at yours?",
        "Kids are at football till 5",
        "Hope you feel better soon, get some rest",
        "I'll bring the salad, you bring drinks",
        "Wanna grab lunch tomorrow?",
        "Dinner's ready!",
        "Yeah no worries, take your time",
        "Found a nice flat on {site}, want to have a look tonight?",
        "Dinner at mine on Friday? Bring {name_en}",
        "My phone is dying, text me on WhatsApp",
        "Your verification code is {code6}. Do not share it with anyone.",
        "{bank}: purchase of {amount} KZT at {shop}. Available balance {amount2} KZT",
        "Your order #{order} has been shipped and will arrive on {date}",
        "Your driver {name_en} is arriving in {min} min in a {car_en}, plate {plate}",
        "Your table at {restaurant} is confirmed for {time} today",
        "Reminder: dentist appointment tomorrow at {time}",
        "Your boarding pass for flight KC{flight} is ready. Gate closes 20 minutes before "
        "departure",
        "Package {track} was delivered. Thank you for shopping with us",
        "Use code {code4} to sign in. If you did not request it, you can ignore this message",
        "Your monthly statement is now available in the app",
        "Your booking at {city_en} hotel is confirmed for {date}. Check-in from 14:00",
        "{bank}: we will never ask for your SMS code or card PIN. Stay safe",
        "Track your parcel {track} at {real_url}",
        "Your appointment is confirmed: {date} at {time}. Reply C to cancel",
        "Your electricity bill of {amount} KZT is due on {date}. Pay in the app",
        "Thank you for your order! We'll text you when it ships",
        "Your appointment has been moved to {date} at {time}",
        "Your taxi has arrived, the driver is waiting outside",
        "Your password was changed on {date}. If this was you, no action is needed",
        "Your subscription has been renewed. Thanks for staying with us",
        "We missed you today. Your parcel {track} is at the post office, bring ID to collect it",
        "Card ending {card4}: {amount} KZT at {shop}",
        "{shop}: 20% off everything this weekend. See you in store!",
    ),
}

FRAUD: Final[dict[str, tuple[str, ...]]] = {
    "ru": (
        "{bank}: ваша карта *{card4} временно заблокирована. Для восстановления доступа "
        "перейдите {fake_url}",
        "Операции по вашей карте приостановлены службой безопасности. Срочно свяжитесь: {phone}",
        "Подозрительная операция на {amount} ₸. Если это не вы, сообщите код из SMS "
        "сотруднику по номеру {phone}",
        "Ваши сбережения под угрозой. Переведите деньги на защищённый счёт, специалист "
        "перезвонит вам: {phone}",
        "Служба безопасности {bank}: мошенники оформляют на вас заём. Переведите средства на "
        "резервный счёт по инструкции оператора",
        "Вам придёт SMS с кодом от 1414. Продиктуйте его нашему специалисту для обновления данных",
        "Сообщите курьеру код из SMS, чтобы получить подарок",
        "Для подтверждения доставки назовите код, который пришёл вам по SMS",
        "Казпочта: ваша посылка ждёт на складе. Оплатите хранение {amount} тг: {fake_url}",
        "Посылка {track} не доставлена из-за неверного адреса. Уточните данные: {fake_url}",
        "Ваше отправление вернут отправителю. Чтобы получить, оплатите доставку {amount} тг "
        "по ссылке {fake_url}",
        "Поздравляем! Вы победитель акции {bank} и выиграли {amount} ₸. Получить приз: {fake_url}",
        "Ваш номер выиграл iPhone 15 в розыгрыше. Заберите подарок: {fake_url}",
        "Вам начислен бонус {amount} тг. Активируйте до {date}: {fake_url}",
        "Вас беспокоит следователь полиции. На ваше имя мошенники оформили кредит, срочно "
        "перезвоните {phone}",
        "КНБ РК: ваши данные используются в подозрительных переводах. Ожидайте звонка "
        "сотрудника и никому не сообщайте об этом",
        "Национальный банк: по вашему счёту выявлены подозрительные переводы. Для защиты "
        "средств свяжитесь со специалистом {phone}",
        "На ваше имя подана заявка на кредит {amount} тг. Для отмены перейдите {fake_url}",
        "Инвестируйте от 50 000 тг в акции Казатомпрома и получайте до 300% в месяц: {fake_url}",
        "Заработок на криптовалюте без вложений! Пиши в Telegram {tg}",
        "Удалённая работа: ставь лайки и получай от 20 000 тг в день. Пиши в WhatsApp {phone}",
        "Мама, я попал в аварию, телефон разбит. Срочно переведи {amount} тг на этот номер, "
        "потом всё объясню",
        "Kaspi: вам отправлен перевод {amount} ₸. Для зачисления подтвердите карту: {fake_url}",
        "Покупатель оплатил ваш товар на OLX. Получите деньги по ссылке {fake_url}",
        "Qoldau.kz: ваша учётная запись будет удалена. Подтвердите ЭЦП по ссылке {fake_url}",
        "Uchet.kz: задолженность по налогам {amount} тг. Оплатите сегодня, иначе счета будут "
        "арестованы: {fake_url}",
        "eGov: срок действия вашей ЭЦП истекает сегодня. Продлите бесплатно: {fake_url}",
        "Ваш номер будет отключён из-за перерегистрации SIM-карты. Назовите код из SMS оператору",
        "Срок действия вашей SIM-карты истекает. Для продления позвоните {phone}",
        "Вам положена государственная компенсация {amount} тг. Оформите выплату на {fake_url}",
        "Ваш WhatsApp будет заблокирован. Подтвердите номер кодом из SMS, отправьте его нам",
        "Сотрудник банка: не кладите трубку, продиктуйте код для отмены операции",
        "{bank}: на ваше имя оформлен кредит {amount} ₸. Если вы не брали, позвоните {phone}",
        "Ваш аккаунт Kaspi взломан. Чтобы сохранить деньги, переведите их на указанный "
        "специалистом безопасный счёт",
        "Вам поступит SMS-код с короткого номера 1414, сообщите его специалисту",
        "Для завершения проверки продиктуйте цифры из SMS сотруднику, он уже на линии",
    ),
    "kk": (
        "{bank}: картаңыз уақытша бұғатталды. Қалпына келтіру үшін сілтемеге өтіңіз: {fake_url}",
        "Картаңызда күдікті операция анықталды. SMS-кодты банк маманына айтыңыз: {phone}",
        "Қаражатыңыз қауіп астында! Ақшаңызды қауіпсіз шотқа аударыңыз, маман хабарласады",
        "1414 нөмірінен келген кодты қызметкерімізге айтыңыз, деректеріңізді жаңартамыз",
        "Қазпошта: сәлемдемеңіз қоймада тұр. Сақтау ақысын {amount} теңге төлеңіз: {fake_url}",
        "Сәлемдемеңізді жеткізу мүмкін болмады. Мекенжайыңызды растаңыз: {fake_url}",
        "Құттықтаймыз! Сіз {amount} теңге ұтып алдыңыз. Сыйлықты алу үшін: {fake_url}",
        "Полиция: сіздің атыңызға алаяқтар несие рәсімдеді. Дереу хабарласыңыз: {phone}",
        "ҰҚК: деректеріңіз күдікті аударымдарда пайдаланылды. Ешкімге айтпаңыз, қызметкер "
        "хабарласады",
        "Атыңызға {amount} теңге несиеге өтінім берілді. Бас тарту үшін: {fake_url}",
        "Айына 200% табыс! Инвестициялық жобаға тіркеліңіз: {fake_url}",
        "Курьер гүл әкелді. Тапсырысты растау үшін SMS-кодты айтыңыз",
        "Анашым, телефоным сынып қалды, осы нөмірге {amount} теңге салып жіберші, кейін "
        "түсіндіремін",
        "eGov: ЭЦП мерзімі бүгін бітеді. Тегін ұзарту: {fake_url}",
        "Мемлекеттен {amount} теңге өтемақы тағайындалды. Алу үшін деректеріңізді енгізіңіз: "
        "{fake_url}",
        "Kaspi: сізге {amount} ₸ аударым келді. Алу үшін картаны растаңыз: {fake_url}",
        "Үйден жұмыс: лайк басып күніне 20 000 теңге табыңыз. WhatsApp: {phone}",
        "Ұлттық Банк: шотыңыздан күдікті аударымдар анықталды. Маманға хабарласыңыз: {phone}",
        "{bank}: сіздің атыңызға {amount} ₸ несие рәсімделді. Тоқтату үшін қоңырау шалыңыз: "
        "{phone}",
        "SIM-картаңыз бүгін өшіріледі. Ұзарту үшін SMS-кодты операторға айтыңыз",
        "Банк қызметкері: операцияны тоқтату үшін келген кодты айтыңыз, тұтқаны қоймаңыз",
        "Qoldau.kz: есептік жазбаңыз жойылады. ЭЦП деректерін растаңыз: {fake_url}",
        "Салық қарызыңыз {amount} теңге. Шоттарыңыз бұғатталмас үшін бүгін төлеңіз: {fake_url}",
        "Сіздің нөміріңіз ұтыс ойынында жеңді! Жүлдені алу үшін: {fake_url}",
        "Kaspi аккаунтыңыз бұзылды. Ақшаңызды маман көрсеткен қауіпсіз шотқа аударыңыз",
        "Сізге 1414 қысқа нөмірінен SMS-код келеді, оны маманымызға айтыңыз",
        "Кодты тек біздің қызметкерге айтыңыз, ол сізге қазір қоңырау шалады",
        "Тапсырысты растау үшін SMS арқылы келген кодты курьерге хабарлаңыз",
        "Банк маманы: шотыңызды қорғау үшін SMS-кодты хабарлаңыз",
        "ХҚКО: деректеріңізді жаңарту үшін 1414-тен келген кодты операторға айтыңыз",
    ),
    "en": (
        "URGENT: your {bank} account has been suspended. Verify your identity at {fake_url}",
        "Your card ending {card4} was used for a suspicious payment of {amount} KZT. If this "
        "wasn't you, call {phone} immediately",
        "Congratulations! You have been selected to receive a $500 gift card. Claim now: "
        "{fake_url}",
        "Your parcel could not be delivered due to an unpaid customs fee. Pay {amount} KZT "
        "here: {fake_url}",
        "Invest $250 and earn $5000 a week with our AI crypto trading bot. Join: {fake_url}",
        "National Bank security department: your savings are at risk, move them to a "
        "protected account. Call {phone}",
        "Police notice: a loan was taken out in your name. Call {phone} now and tell no one",
        "Please read me the code we just sent you by SMS to confirm your delivery",
        "Your WhatsApp will be deactivated today. Send us the 6-digit code to keep your account",
        "You have won a brand new iPhone in our lucky draw! Pay only the shipping at {fake_url}",
        "Final reminder: a tax refund of {amount} KZT is waiting. Enter your card details at "
        "{fake_url}",
        "Hi mum, I lost my phone, this is my new number. Can you send me {amount} for rent "
        "urgently?",
        "Work from home! Earn $300 a day liking videos. Message us on Telegram {tg}",
        "Your {bank} card has been blocked. To unlock it, confirm your details: {fake_url}",
        "Bank security: do not hang up. Tell the operator the code from the SMS to cancel the "
        "transfer",
        "Your package is on hold. Confirm your address and pay a small fee: {fake_url}",
        "Dear customer, you have an unclaimed bonus of {amount} KZT. Activate before {date}: "
        "{fake_url}",
        "Your mobile number will be disconnected today. Call {phone} to keep it active",
        "Exclusive offer: double your money in 7 days, guaranteed. Register at {fake_url}",
        "eGov: your digital signature expires today. Renew it for free at {fake_url}",
        "You will get a code from 1414. Tell it to our officer when he calls you",
    ),
}

_SLOT_RE: Final = re.compile(r"\{(\w+)\}")


def fill(template: str, rng: random.Random) -> str:
    """The template with each placeholder replaced by a generated value."""

    def value(match: re.Match[str]) -> str:
        try:
            return _SLOTS[match.group(1)](rng)
        except KeyError:
            raise KeyError(f"unknown placeholder {match.group()} in {template!r}") from None

    return _SLOT_RE.sub(value, template)


def _variant(text: str, rng: random.Random) -> str:
    """Small changes people and senders make: no final stop, lower case, an extra space."""
    roll = rng.random()
    if roll < 0.15:
        return text.rstrip(".!")
    if roll < 0.25:
        return text.lower()
    if roll < 0.3:
        return text.replace(". ", ".  ", 1)
    return text


def builtin_examples(seed: int = SEED, variants: int = VARIANTS) -> list[tuple[str, bool, str]]:
    """(text, fraud?, template id) for every filled template; the id groups a template's
    variants (for cross-validation that never sees a template's wording in training)."""
    rng = random.Random(seed)
    out: list[tuple[str, bool, str]] = []
    seen: set[str] = set()
    for fraud, table in ((False, HAM), (True, FRAUD)):
        for lang, templates in table.items():
            for number, template in enumerate(templates):
                group = f"{'fraud' if fraud else 'ham'}.{lang}.{number}"
                for _ in range(variants):
                    text = _variant(fill(template, rng), rng)
                    if text not in seen:
                        seen.add(text)
                        out.append((text, fraud, group))
    return out


def builtin_corpus(seed: int = SEED, variants: int = VARIANTS) -> tuple[list[str], list[bool]]:
    """Texts and labels (True = fraud) of the built-in training corpus."""
    examples = builtin_examples(seed, variants)
    return [e[0] for e in examples], [e[1] for e in examples]


def describe(seed: int = SEED, variants: int = VARIANTS) -> dict[str, object]:
    """What the built-in corpus is, for a model's metadata."""
    _, labels = builtin_corpus(seed, variants)
    return {
        "source": "builtin (gateway/detect/seed_texts.py)",
        "seed": seed,
        "variants": variants,
        "ham": labels.count(False),
        "fraud": labels.count(True),
        "templates": {
            "ham": sum(len(t) for t in HAM.values()),
            "fraud": sum(len(t) for t in FRAUD.values()),
        },
    }
