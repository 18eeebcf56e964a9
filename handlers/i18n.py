"""User-facing sentences in English and Spanish.

Every string is plain text or HTML written here; values interpolated into HTML strings are
escaped by the caller (see :mod:`handlers.render`).
"""

from __future__ import annotations

UI_LANGUAGES = ("en", "es")
DEFAULT_LANGUAGE = "en"

MESSAGES: dict[str, dict[str, str]] = {
    "start": {
        "en": (
            "<b>Condensa</b> turns long text into something you can read in ten seconds.\n\n"
            "• Send or forward me a long message (or several) and I summarize it.\n"
            "• /summary — summarize the text after the command, the message you reply to, "
            "or a .txt file.\n"
            "• /keywords — the key phrases of the same inputs.\n"
            "• /ask — ask the local language model (reply to a message to ask about it); "
            "/generate continues a text; /cancel stops it.\n"
            "• /settings — method, length and reply language for this chat.\n"
            "• In groups: /digest sums up the conversation (admins turn it on with /digest_on "
            "and can /schedule it); /optout and /forget keep your messages out.\n"
            "• /help — this message."
        ),
        "es": (
            "<b>Condensa</b> convierte textos largos en algo que se lee en diez segundos.\n\n"
            "• Envíame o reenvíame un mensaje largo (o varios) y lo resumo.\n"
            "• /summary — resume el texto tras el comando, el mensaje al que respondes "
            "o un archivo .txt.\n"
            "• /keywords — las frases clave de lo mismo.\n"
            "• /ask — pregunta al modelo de lenguaje local (responde a un mensaje para preguntar "
            "sobre él); /generate continúa un texto; /cancel lo detiene.\n"
            "• /settings — método, longitud e idioma de respuesta de este chat.\n"
            "• En grupos: /digest resume la conversación (los administradores la activan con "
            "/digest_on y pueden programarla con /schedule); /optout y /forget excluyen tus "
            "mensajes.\n"
            "• /help — este mensaje."
        ),
    },
    "help_group": {
        "en": (
            "\n\n<b>In groups</b>: reply to a message with /summary or /keywords. By default "
            "Telegram's privacy mode lets me see only commands and replies to me; to let me read "
            "ordinary messages, a group admin can make me an admin or turn privacy mode off "
            "with @BotFather (/setprivacy)."
        ),
        "es": (
            "\n\n<b>En grupos</b>: responde a un mensaje con /summary o /keywords. Por defecto el "
            "modo de privacidad de Telegram solo me deja ver comandos y respuestas a mí; para que "
            "lea los mensajes normales, un administrador puede hacerme administrador o desactivar "
            "el modo de privacidad con @BotFather (/setprivacy)."
        ),
    },
    "cmd_start": {"en": "What Condensa does", "es": "Qué hace Condensa"},
    "cmd_help": {"en": "How to use the bot", "es": "Cómo usar el bot"},
    "cmd_summary": {
        "en": "Summarize text, a reply or a file",
        "es": "Resumir un texto, una respuesta o un archivo",
    },
    "cmd_keywords": {"en": "Key phrases of a text", "es": "Frases clave de un texto"},
    "cmd_settings": {"en": "Method, length, language", "es": "Método, longitud, idioma"},
    "working": {"en": "⏳ Working on it…", "es": "⏳ Trabajando en ello…"},
    "writing": {"en": "⏳ Writing…", "es": "⏳ Escribiendo…"},
    "cmd_generate": {
        "en": "Continue a text with the local LLM",
        "es": "Continuar un texto con el LLM local",
    },
    "cmd_ask": {
        "en": "Ask the local LLM (reply to ask about a message)",
        "es": "Preguntar al LLM local (responde para preguntar sobre un mensaje)",
    },
    "cmd_cancel": {"en": "Stop the running generation", "es": "Detener la generación en curso"},
    "no_input_generate": {
        "en": "Send /generate followed by the beginning of a text.",
        "es": "Envía /generate seguido del comienzo de un texto.",
    },
    "no_input_ask": {
        "en": "Send /ask followed by a question, or reply to a message with /ask and an instruction.",
        "es": "Envía /ask seguido de una pregunta, o responde a un mensaje con /ask y una instrucción.",
    },
    "ask_default_instruction": {
        "en": "Summarize this text in a few sentences.",
        "es": "Resume este texto en pocas frases.",
    },
    "cancel_none": {
        "en": "Nothing is being written here.",
        "es": "Aquí no se está escribiendo nada.",
    },
    "cancel_done": {"en": "Stopping.", "es": "Deteniendo."},
    "generation_running": {
        "en": "I'm already writing something in this chat; wait for it or send /cancel.",
        "es": "Ya estoy escribiendo algo en este chat; espera o envía /cancel.",
    },
    "generation_off": {
        "en": "Text generation is not enabled on this server.",
        "es": "La generación de texto no está activada en este servidor.",
    },
    "generation_stopped": {"en": "(stopped)", "es": "(detenido)"},
    "generation_empty": {"en": "The model wrote nothing.", "es": "El modelo no escribió nada."},
    "no_input_summary": {
        "en": "Send /summary followed by a text, or reply with /summary to a message or a .txt file.",
        "es": "Envía /summary seguido de un texto, o responde con /summary a un mensaje o a un archivo .txt.",
    },
    "no_input_keywords": {
        "en": "Send /keywords followed by a text, or reply with /keywords to a message or a .txt file.",
        "es": "Envía /keywords seguido de un texto, o responde con /keywords a un mensaje o a un archivo .txt.",
    },
    "short_private": {
        "en": "Send me a longer text (at least {min_chars} characters), forward me messages, or use /summary.",
        "es": "Envíame un texto más largo (al menos {min_chars} caracteres), reenvíame mensajes o usa /summary.",
    },
    "err_empty": {
        "en": "There is no text to work on.",
        "es": "No hay texto con el que trabajar.",
    },
    "err_too_short": {
        "en": "This text is already short: it has {sentences} sentence(s), I need at least {minimum}.",
        "es": "Este texto ya es corto: tiene {sentences} frase(s) y necesito al menos {minimum}.",
    },
    "err_too_large": {
        "en": "This is too long for me: {size} {unit}, the limit is {limit}.",
        "es": "Es demasiado largo para mí: {size} {unit}, el límite es {limit}.",
    },
    "err_file_too_big": {
        "en": "Telegram lets bots download files of up to 20 MB; this one is {size}. "
        "(A self-hosted Bot API server raises that limit.)",
        "es": "Telegram solo deja a los bots descargar archivos de hasta 20 MB; este ocupa {size}. "
        "(Un servidor propio de la Bot API sube ese límite.)",
    },
    "err_unsupported": {
        "en": "I can't read this kind of file ({kind}); send text, PDF, DOCX, ODT, RTF, EPUB, HTML or a .txt file.",
        "es": "No puedo leer este tipo de archivo ({kind}); envía texto, PDF, DOCX, ODT, RTF, EPUB, HTML o un .txt.",
    },
    "err_busy": {
        "en": "I'm busy with other requests right now, please try again in a moment.",
        "es": "Estoy ocupado con otras peticiones, inténtalo de nuevo en un momento.",
    },
    "err_model_unavailable": {
        "en": "That method is not available on this server ({reason}).",
        "es": "Ese método no está disponible en este servidor ({reason}).",
    },
    "err_unknown_method": {
        "en": "Unknown method “{name}”. Choose one with /settings.",
        "es": "Método desconocido «{name}». Elige uno con /settings.",
    },
    "err_generic": {
        "en": "Sorry, something went wrong on my side. Please try again.",
        "es": "Lo siento, algo ha fallado por mi parte. Inténtalo de nuevo.",
    },
    "summary_heading": {
        "en": "<b>{method}</b> · {kept} of {total} sentences, {percent} %",
        "es": "<b>{method}</b> · {kept} de {total} frases, {percent} %",
    },
    "summary_fallback": {
        "en": "The {requested} method is not available on this server ({reason}), so this is the {used} summary.",
        "es": "El método {requested} no está disponible en este servidor ({reason}), así que este es el resumen {used}.",
    },
    "count_pages": {"en": "{count} pages", "es": "{count} páginas"},
    "count_chapters": {"en": "{count} chapters", "es": "{count} capítulos"},
    "count_words": {"en": "{count} words", "es": "{count} palabras"},
    "partial_pages": {
        "en": "Summary of the first part ({read} of {total} pages): the document is longer than I process at once.",
        "es": "Resumen de la primera parte ({read} de {total} páginas): el documento es más largo de lo que proceso de una vez.",
    },
    "partial_chapters": {
        "en": "Summary of the first part ({read} of {total} chapters): the book is longer than I process at once.",
        "es": "Resumen de la primera parte ({read} de {total} capítulos): el libro es más largo de lo que proceso de una vez.",
    },
    "partial_text": {
        "en": "Summary of the first part: the document is longer than I process at once.",
        "es": "Resumen de la primera parte: el documento es más largo de lo que proceso de una vez.",
    },
    "err_encrypted": {
        "en": "This PDF is password-protected; send a copy without a password.",
        "es": "Este PDF está protegido con contraseña; envía una copia sin contraseña.",
    },
    "err_no_text": {
        "en": "This PDF has no text layer (it looks scanned); run it through OCR first and send the result.",
        "es": "Este PDF no tiene capa de texto (parece escaneado); pásalo antes por un OCR y envía el resultado.",
    },
    "err_damaged": {
        "en": "I can't read this file: it seems damaged or is not what its name says.",
        "es": "No puedo leer este archivo: parece dañado o no es lo que dice su nombre.",
    },
    "err_too_complex": {
        "en": "This file takes too long or too much memory to read, so I stopped; it may be damaged or built to overload readers.",
        "es": "Leer este archivo lleva demasiado tiempo o memoria, así que he parado; puede estar dañado o hecho para saturar lectores.",
    },
    "err_fetch": {
        "en": "I didn't fetch that link: {reason}.",
        "es": "No he descargado ese enlace: {reason}.",
    },
    "keywords_heading": {
        "en": "<b>Key phrases</b>",
        "es": "<b>Frases clave</b>",
    },
    "no_keywords": {
        "en": "I found no key phrases in this text.",
        "es": "No he encontrado frases clave en este texto.",
    },
    "settings_title": {
        "en": "<b>Settings for this chat</b>\nMethod: {method}\nLength: {length}\nReply language: {reply_language}",
        "es": "<b>Ajustes de este chat</b>\nMétodo: {method}\nLongitud: {length}\nIdioma de respuesta: {reply_language}",
    },
    "settings_saved": {"en": "Saved", "es": "Guardado"},
    "settings_admins_only": {
        "en": "Only group admins can change these settings.",
        "es": "Solo los administradores del grupo pueden cambiar estos ajustes.",
    },
    "settings_invalid": {"en": "That option no longer exists.", "es": "Esa opción ya no existe."},
    "length_short": {"en": "short", "es": "corto"},
    "length_medium": {"en": "medium", "es": "medio"},
    "length_long": {"en": "long", "es": "largo"},
    "language_auto": {"en": "automatic", "es": "automático"},
    "language_en": {"en": "English", "es": "inglés"},
    "language_es": {"en": "Spanish", "es": "español"},
    "default_mark": {"en": "default", "es": "predeterminado"},
    "cmd_digest": {
        "en": "Digest of this group's conversation",
        "es": "Resumen de la conversación del grupo",
    },
    "cmd_digest_on": {
        "en": "Admins: start keeping messages for digests",
        "es": "Admins: guardar mensajes para resúmenes",
    },
    "cmd_digest_off": {
        "en": "Admins: stop digests and delete kept messages",
        "es": "Admins: parar los resúmenes y borrar los mensajes",
    },
    "cmd_schedule": {
        "en": "Admins: daily digest, e.g. 21:00 Europe/Madrid",
        "es": "Admins: resumen diario, p. ej. 21:00 Europe/Madrid",
    },
    "cmd_optout": {
        "en": "Keep my messages out of digests",
        "es": "Excluir mis mensajes de los resúmenes",
    },
    "cmd_optin": {
        "en": "Include my messages in digests again",
        "es": "Volver a incluir mis mensajes",
    },
    "cmd_forget": {
        "en": "Delete my stored messages in this group",
        "es": "Borrar mis mensajes guardados en este grupo",
    },
    "groups_only": {
        "en": "This command works in group chats.",
        "es": "Este comando funciona en grupos.",
    },
    "admins_only": {
        "en": "Only group admins can do this.",
        "es": "Solo los administradores del grupo pueden hacer esto.",
    },
    "digest_enabled": {
        "en": "Digests are on: from now on I keep this group's messages for {days} days so /digest can summarize them. Members can use /optout or /forget at any time.",
        "es": "Resúmenes activados: desde ahora guardo los mensajes del grupo durante {days} días para que /digest los resuma. Cada miembro puede usar /optout o /forget cuando quiera.",
    },
    "digest_privacy": {
        "en": "Note: Telegram's privacy mode hides ordinary messages from me. Make me an admin of this group (or turn privacy mode off with @BotFather, /setprivacy) so I can read them.",
        "es": "Atención: el modo de privacidad de Telegram me oculta los mensajes normales. Hazme administrador del grupo (o desactiva el modo de privacidad con @BotFather, /setprivacy) para que pueda leerlos.",
    },
    "digest_disabled": {
        "en": "Digests are off and every kept message of this group is deleted.",
        "es": "Resúmenes desactivados; he borrado todos los mensajes guardados del grupo.",
    },
    "digest_not_enabled": {
        "en": "Digests are off in this group; an admin can turn them on with /digest_on.",
        "es": "Los resúmenes están desactivados en este grupo; un administrador puede activarlos con /digest_on.",
    },
    "digest_usage": {
        "en": "Use /digest (since the last digest), /digest 200 (last 200 messages) or /digest 6h (last 6 hours).",
        "es": "Usa /digest (desde el último resumen), /digest 200 (últimos 200 mensajes) o /digest 6h (últimas 6 horas).",
    },
    "digest_too_few": {
        "en": "There are too few kept messages in that range for a digest.",
        "es": "Hay muy pocos mensajes guardados en ese intervalo para hacer un resumen.",
    },
    "digest_heading": {
        "en": "<b>Digest</b> · {count} messages from {people} people · {start} – {end}",
        "es": "<b>Resumen</b> · {count} mensajes de {people} personas · {start} – {end}",
    },
    "digest_keyphrases": {
        "en": "<b>Key phrases</b> (messages)",
        "es": "<b>Frases clave</b> (mensajes)",
    },
    "digest_topics": {"en": "<b>Topics</b>", "es": "<b>Temas</b>"},
    "digest_topic_line": {"en": "{words} · {count} messages", "es": "{words} · {count} mensajes"},
    "digest_cloud_caption": {"en": "Key phrases of the digest", "es": "Frases clave del resumen"},
    "schedule_set": {
        "en": "Daily digest at {time} ({timezone}).",
        "es": "Resumen diario a las {time} ({timezone}).",
    },
    "schedule_off": {
        "en": "The daily digest is off.",
        "es": "El resumen diario está desactivado.",
    },
    "schedule_usage": {
        "en": "Use /schedule 21:00 Europe/Madrid (a time and an IANA time zone) or /schedule off.",
        "es": "Usa /schedule 21:00 Europe/Madrid (una hora y una zona horaria IANA) o /schedule off.",
    },
    "optout_done": {
        "en": "{name}, your messages are no longer kept for digests here; I deleted {count} stored message(s). /optin undoes it.",
        "es": "{name}, ya no guardo tus mensajes para los resúmenes de este grupo; he borrado {count} mensaje(s) guardado(s). /optin lo deshace.",
    },
    "optin_done": {
        "en": "{name}, your messages will be included in digests again.",
        "es": "{name}, tus mensajes volverán a incluirse en los resúmenes.",
    },
    "forget_done": {
        "en": "{name}, I deleted the {count} message(s) of yours I had stored in this group.",
        "es": "{name}, he borrado los {count} mensaje(s) tuyos que tenía guardados en este grupo.",
    },
    "import_done": {
        "en": "Imported {count} messages of “{title}” for digests.",
        "es": "He importado {count} mensajes de «{title}» para los resúmenes.",
    },
    "import_bad": {
        "en": "This is not a Telegram Desktop chat export: send result.json (JSON format) or a zip containing it.",
        "es": "Esto no es una exportación de chat de Telegram Desktop: envía result.json (formato JSON) o un zip que lo contenga.",
    },
    "import_unknown_chat": {
        "en": "I can't tell which group this export belongs to; send it in that group with the caption /import.",
        "es": "No sé de qué grupo es esta exportación; envíala en ese grupo con el texto /import.",
    },
    "import_wrong_chat": {
        "en": "This export is of another chat; send it in the group it comes from.",
        "es": "Esta exportación es de otro chat; envíala en el grupo del que procede.",
    },
    "unit_characters": {"en": "characters", "es": "caracteres"},
    "unit_bytes": {"en": "bytes", "es": "bytes"},
}


def t(key: str, language: str, **values: object) -> str:
    """The message ``key`` in ``language`` (English when missing), formatted with ``values``."""
    variants = MESSAGES[key]
    template = variants.get(language) or variants[DEFAULT_LANGUAGE]
    return template.format(**values) if values else template


def pick_language(preferred: str | None, user_language_code: str | None) -> str:
    """The UI language: the chat's choice, else the user's Telegram language, else English."""
    if preferred in UI_LANGUAGES:
        return preferred
    code = (user_language_code or "").split("-")[0].lower()
    return code if code in UI_LANGUAGES else DEFAULT_LANGUAGE
