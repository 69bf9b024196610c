"""A deterministic corpus of realistic posts, as the JSON bodies editors upload.

The sample community's posts (``herald_tools/samples``) come first; the rest is generated from a
seeded RNG: sentence fragments in ten languages, emoji and flags, scheme-less and full links,
shorteners, hashtags, mentions, place and country names, one to three paragraphs. The same seed
gives the same bytes on every machine, so two runs measure the same work.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_SEED = 20240611
DEFAULT_SIZE = 2000
#: The sample community (found beside this package, so it works however herald_tools is installed).
SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"


@dataclass(frozen=True, slots=True)
class CorpusPost:
    """One post: the JSON body as uploaded, and what the generator put in (for reporting)."""

    body: bytes
    language: str  # the language the fragments were drawn from ("sample" for the sample posts)
    source: str  # "sample" or "generated"


# Sentences per language: short, practical, the kind of news the channel carries.
FRAGMENTS: dict[str, list[str]] = {
    "en": [
        "Registration for school places opens on Monday at the community centre.",
        "Bring any identity document you have, even an expired one.",
        "The food distribution in Gaziantep moves to the old market hall this week.",
        "Nobody from our team will ever ask you for money to speed up your case.",
        "Free legal advice is available every Thursday from 10:00 to 14:00.",
        "The mobile clinic will be in Tripoli on Tuesday and in Beirut on Friday.",
        "Families arriving from Sudan can ask for blankets and hygiene kits at the border.",
        "Heavy rain is expected along the coast; shelters are open day and night.",
        "Children under five can be vaccinated for free, with or without papers.",
        "Our helpline answers in English, Arabic, Dari and Ukrainian.",
        "The cash assistance for April will arrive on the 12th.",
        "Thank you to the volunteers who welcomed new arrivals at the Moldovan border.",
        "Bus tickets to the registration centre are refunded on presentation of the receipt.",
        "Please share this message with anyone who might need it.",
        "Scam warning: fake job offers in Germany are circulating on WhatsApp.",
    ],
    "fr": [
        "Les inscriptions pour les cours de français gratuits sont ouvertes à Marseille et à Lyon.",
        "Les places sont limitées, inscrivez-vous avant vendredi.",
        "La distribution alimentaire aura lieu samedi matin devant la mairie.",
        "Apportez un justificatif de domicile si vous en avez un.",
        "Attention aux faux conseillers qui demandent de l'argent pour un rendez-vous à la préfecture.",
        "Les familles venues du Burkina Faso peuvent s'adresser à l'accueil de jour.",
        "La permanence juridique est ouverte le mardi et le jeudi.",
        "Merci aux bénévoles qui ont accueilli les familles arrivées d'Haïti cette semaine.",
        "Le centre de santé de Bobigny vaccine les enfants sans rendez-vous.",
        "Des interprètes en arabe et en pachto seront présents.",
    ],
    "es": [
        "La vacunación contra el sarampión es gratuita para todos los niños, con o sin papeles.",
        "Los centros de salud de Cúcuta atienden de lunes a sábado.",
        "Circulan mensajes que ofrecen visas de trabajo para España a cambio de dinero; son falsos.",
        "Los trámites oficiales son gratuitos, verifica siempre en nuestra página.",
        "Las familias venezolanas pueden registrarse en el punto de atención de Bogotá.",
        "Mañana habrá reparto de kits de higiene en la terminal de autobuses.",
        "El albergue de Tapachula tiene camas disponibles para mujeres con niños.",
        "Recuerda llevar tu documento de identidad, aunque esté vencido.",
        "La línea de ayuda atiende por WhatsApp las 24 horas.",
        "Gracias a todas las personas voluntarias que apoyaron en la frontera con Ecuador.",
    ],
    "ar": [
        "تذكير: مراكز التسجيل في عمّان مفتوحة يوم السبت من الساعة التاسعة صباحاً حتى الثالثة عصراً.",
        "لا تنسوا إحضار بطاقات الهوية لجميع أفراد العائلة.",
        "توزيع المساعدات الغذائية سيكون في مخيم الزعتري يوم الأحد.",
        "احذروا من الرسائل التي تطلب المال مقابل تسريع معاملات اللجوء.",
        "العيادة المتنقلة في طرابلس تقدم اللقاحات مجاناً للأطفال.",
        "يمكن للعائلات القادمة من السودان طلب البطانيات في نقطة العبور.",
        "خط المساعدة متاح باللغة العربية على مدار الساعة.",
        "شكراً لكل المتطوعين الذين ساعدوا العائلات هذا الأسبوع.",
        "التسجيل في المدارس مفتوح حتى نهاية الشهر.",
        "الاستشارة القانونية مجانية كل يوم خميس.",
    ],
    "pt": [
        "As inscrições para as aulas de português começam na próxima segunda-feira.",
        "A distribuição de cestas básicas será no sábado, em frente à igreja.",
        "Famílias vindas da Venezuela podem pedir ajuda no posto de Pacaraima.",
        "Nunca pague para marcar um atendimento: o serviço é gratuito.",
        "O posto de saúde de Boa Vista vacina crianças sem agendamento.",
        "Leve qualquer documento que tiver, mesmo vencido.",
        "Obrigado aos voluntários que ajudaram na acolhida desta semana.",
        "O abrigo de Manaus tem vagas para mulheres com crianças.",
    ],
    "tr": [
        "Gaziantep'teki mobil klinik pazartesiden itibaren saat 8:00 ile 16:00 arasında açık.",
        "Çocuklar için aşılar ücretsizdir.",
        "Kayıt merkezine gelirken kimlik belgelerinizi getirmeyi unutmayın.",
        "Dolandırıcılara dikkat: randevu için kimse sizden para isteyemez.",
        "Gıda dağıtımı bu hafta cumartesi günü yapılacak.",
        "Hukuki danışmanlık her perşembe ücretsizdir.",
        "Yardım hattımız Türkçe ve Arapça hizmet veriyor.",
    ],
    "uk": [
        "Реєстрація на безкоштовні мовні курси відкрита до кінця місяця.",
        "Візьміть із собою будь-який документ, навіть прострочений.",
        "Гаряча лінія працює українською та англійською мовами.",
        "Роздача гігієнічних наборів відбудеться в суботу біля вокзалу.",
        "Дякуємо волонтерам, які зустрічали родини на кордоні з Польщею.",
        "Діти можуть отримати щеплення безкоштовно.",
        "Остерігайтеся шахраїв, які просять гроші за прискорення розгляду справи.",
    ],
    "fa": [
        "ثبت نام برای کلاس‌های رایگان زبان از دوشنبه آغاز می‌شود.",
        "لطفاً هر مدرک هویتی که دارید همراه داشته باشید.",
        "توزیع کمک‌های غذایی روز شنبه در مرکز اجتماعی انجام می‌شود.",
        "هیچ کس از طرف ما برای وقت ملاقات از شما پول نمی‌خواهد.",
        "مشاوره حقوقی رایگان هر پنجشنبه برگزار می‌شود.",
        "خانواده‌هایی که از افغانستان آمده‌اند می‌توانند برای اسکان موقت درخواست بدهند.",
    ],
    "sw": [
        "Usajili wa shule utaanza Jumatatu katika kituo cha jamii.",
        "Leta kitambulisho chochote ulicho nacho, hata kama kimeisha muda.",
        "Chanjo kwa watoto ni bure kwa kila mtu.",
        "Ugawaji wa chakula utafanyika Jumamosi asubuhi.",
        "Tahadhari: hakuna mtu kutoka kwetu atakayekuomba pesa.",
        "Familia zilizowasili kutoka Sudan Kusini zinaweza kuomba msaada kambini Kakuma.",
    ],
    "de": [
        "Die Anmeldung für kostenlose Deutschkurse ist ab Montag möglich.",
        "Bitte bringen Sie alle Dokumente mit, die Sie haben.",
        "Die Beratungsstelle in Berlin hat am Donnerstag länger geöffnet.",
        "Achtung: Niemand von uns verlangt Geld für einen Termin.",
        "Kinder können sich kostenlos impfen lassen.",
        "Danke an alle Ehrenamtlichen, die diese Woche geholfen haben.",
    ],
}

#: Relative frequency of each language in the generated posts.
LANGUAGE_WEIGHTS = {
    "en": 30,
    "fr": 10,
    "es": 12,
    "ar": 14,
    "pt": 5,
    "tr": 6,
    "uk": 7,
    "fa": 6,
    "sw": 4,
    "de": 6,
}

LEADING_EMOJI = ["⚠️", "🌊", "🏥", "📚", "📢", "✅", "❗", "🚌", "🍞", "💉", "🏠", "📞", "🆘", "ℹ️", "🗓️"]
TRAILING_EMOJI = ["💙💛", "🙏", "❤️", "👍🏽", "🤝", "👨‍👩‍👧‍👦", "💪🏾", "🌍", "✨"]
FLAGS = ["🇸🇾", "🇱🇧", "🇹🇷", "🇺🇦", "🇸🇩", "🇹🇩", "🇨🇴", "🇻🇪", "🇦🇫", "🇲🇿", "🇫🇷", "🇩🇪", "🇪🇺", "🏴󠁧󠁢󠁳󠁣󠁴󠁿"]
HASHTAGS: dict[str, list[str]] = {
    "en": ["#Refugees", "#SchoolReg", "#ScamAlert", "#Health", "#Sudan", "#Ukraine", "#Shelter"],
    "fr": ["#Réfugiés", "#Santé", "#CoursDeFrançais", "#Arnaque"],
    "es": ["#SaludParaTodos", "#Venezuela", "#Migrantes", "#Alerta"],
    "ar": ["#الهجرة_الآمنة", "#لاجئين", "#تنبيه", "#صحة"],
    "pt": ["#Acolhida", "#Saúde", "#Migrantes"],
    "tr": ["#Sağlık", "#Duyuru", "#Göç"],
    "uk": ["#Україна", "#Допомога"],
    "fa": ["#پناهندگان", "#اطلاعیه"],
    "sw": ["#Wakimbizi", "#Afya"],
    "de": ["#Geflüchtete", "#Beratung"],
}
MENTIONS = ["@HarbourLine", "@unhcr", "@ifrc", "@HL_Amman", "@helpline.es", "@cruzroja"]
SHORTENERS = ["bit.ly", "tinyurl.com", "t.co", "ow.ly", "is.gd", "rb.gy"]
DOMAINS = [
    "www.harbourline.example",
    "harbourline.example",
    "help.unhcr.org",
    "www.gov.uk",
    "service-public.fr",
]
PATHS = [
    "register",
    "cash-help",
    "es/verificar",
    "clinic/hours",
    "news/2024/04/update",
    "fr/cours",
    "report-scam",
]
TITLES = [
    "Registration dates",
    "Scam warning",
    "Health campaign",
    "Food distribution",
    "Weather alert",
    "Cours de français",
    "Aviso importante",
    "تنبيه مهم",
    "Оголошення",
    "Important update",
]
TAGS = ["health", "registration", "scam", "food", "shelter", "education", "legal", "weather", "cash"]
ALPHANUM = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _link(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.45:
        return f"{rng.choice(SHORTENERS)}/{''.join(rng.choices(ALPHANUM, k=rng.randint(5, 9)))}"
    if roll < 0.8:
        url = f"{rng.choice(DOMAINS)}/{rng.choice(PATHS)}"
        return url + (f"?lang={rng.choice(['en', 'ar', 'fr', 'es'])}" if rng.random() < 0.3 else "")
    return f"https://{rng.choice(DOMAINS)}/{rng.choice(PATHS)}"


def generate_text(rng: random.Random, language: str) -> str:
    """One post's text in ``language``: 1-3 paragraphs with the trimmings a channel post has."""
    sentences = FRAGMENTS[language]
    paragraphs: list[str] = []
    for _ in range(rng.choices([1, 2, 3], weights=[6, 3, 1])[0]):
        count = min(len(sentences), rng.randint(1, 4))
        paragraphs.append(" ".join(rng.sample(sentences, count)))
    head = ""
    if rng.random() < 0.5:
        head += rng.choice(LEADING_EMOJI) + " "
    if rng.random() < 0.2:
        head += "".join(rng.sample(FLAGS, rng.randint(1, 2))) + " "
    paragraphs[0] = head + paragraphs[0]
    tail: list[str] = []
    if rng.random() < 0.65:
        tail.append(_link(rng))
    if rng.random() < 0.15:
        tail.append(rng.choice(MENTIONS))
    tail.extend(rng.sample(HASHTAGS[language], min(len(HASHTAGS[language]), rng.choice([0, 0, 1, 1, 2, 3]))))
    if rng.random() < 0.2:
        tail.append(rng.choice(TRAILING_EMOJI))
    if tail:
        joiner = "\n" if rng.random() < 0.4 else " "
        paragraphs[-1] = paragraphs[-1] + joiner + " ".join(tail)
    return "\n\n".join(paragraphs)


def generate_body(rng: random.Random, language: str) -> bytes:
    """A JSON post body: always ``text``; sometimes a title, tags or ``pinned``; never ``lang``."""
    document: dict[str, Any] = {"text": generate_text(rng, language)}
    if rng.random() < 0.2:
        document["title"] = rng.choice(TITLES)
    if rng.random() < 0.3:
        document["tags"] = rng.sample(TAGS, rng.randint(1, 3))
    if rng.random() < 0.05:
        document["pinned"] = True
    return json.dumps(document, ensure_ascii=False).encode()


def sample_bodies() -> list[bytes]:
    """The sample community's posts as JSON bodies: the export's posts and the valid single posts."""
    from herald.ingest.parsing import IngestLimits, load_front_matter, parse_export

    samples = SAMPLES_DIR
    export = parse_export((samples / "community-export.txt").read_bytes(), IngestLimits())
    bodies = [json.dumps({"text": post.text}, ensure_ascii=False).encode() for post in export.posts]
    posts = samples / "posts"
    for name in sorted(p.name for p in posts.iterdir()):
        raw = (posts / name).read_bytes()
        if name.endswith(".json"):
            document = json.loads(raw)
            if set(document) - {"text", "title", "tags", "lang", "pinned", "notify"} or not isinstance(
                document.get("pinned", False), bool
            ):
                continue  # the deliberately broken sample
            bodies.append(json.dumps(document, ensure_ascii=False).encode())
        elif name.endswith(".md"):
            text = raw.decode()
            _, front, body = text.split("---\n", 2)
            fields = load_front_matter(front, max_depth=8)
            bodies.append(json.dumps({**fields, "text": body.strip()}, ensure_ascii=False).encode())
        elif name.endswith(".txt"):
            bodies.append(json.dumps({"text": raw.decode().strip()}, ensure_ascii=False).encode())
    return bodies


def build_corpus(
    size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED, *, samples: bool = True
) -> list[CorpusPost]:
    """``size`` posts: the samples first (if asked and room), then generated ones."""
    posts = [CorpusPost(body, "sample", "sample") for body in (sample_bodies() if samples else [])][:size]
    rng = random.Random(seed)
    languages = list(LANGUAGE_WEIGHTS)
    weights = list(LANGUAGE_WEIGHTS.values())
    while len(posts) < size:
        language = rng.choices(languages, weights=weights)[0]
        posts.append(CorpusPost(generate_body(rng, language), language, "generated"))
    return posts


def export_text(texts: list[str], community_name: str = "Bench Community") -> bytes:
    """A community page export holding ``texts`` (blank-line separated) and a profile block."""
    flat = [" ".join(t.split()) for t in texts]  # one paragraph each: a blank line ends a post
    profile = [
        "Scan QR code to join Community",
        community_name,
        "Posts generated for the benchmark.",
        "12.5K Members",
        "Created In 2021",
        "Scan QR code to join Community",
    ]
    return ("\n\n".join(flat) + "\n" + "\n".join(profile) + "\n").encode()
