// Condensa playground: a Telegram-like chat against the local Bot API emulator.
// Every string from users or the bot reaches the page as DOM text nodes, never as HTML.
"use strict";

const state = { bot: null, me: null, members: [], chats: [], messages: {}, samples: {},
                elsewhere: null, current: null, speaker: null, replyTo: null };
const $ = (id) => document.getElementById(id);

const ENTITY_TAGS = { bold: "b", italic: "i", underline: "u", strikethrough: "s", code: "code",
                      pre: "pre", blockquote: "blockquote", expandable_blockquote: "blockquote" };

function wrapEntity(node, entity) {
  let element;
  if (entity.type === "text_link") {
    element = document.createElement("a");
    if (/^https?:\/\//i.test(entity.url || "")) {
      element.href = entity.url;
      element.target = "_blank";
      element.rel = "noopener noreferrer";
    }
  } else if (entity.type === "spoiler") {
    element = document.createElement("span");
    element.className = "spoiler";
  } else if (ENTITY_TAGS[entity.type]) {
    element = document.createElement(ENTITY_TAGS[entity.type]);
  } else {
    return node;
  }
  element.append(node);
  return element;
}

// Telegram entity offsets count UTF-16 code units, exactly like JavaScript string indices.
function renderEntities(text, entities) {
  const fragment = document.createDocumentFragment();
  if (!entities || entities.length === 0) {
    fragment.append(document.createTextNode(text));
    return fragment;
  }
  const cuts = new Set([0, text.length]);
  for (const e of entities) { cuts.add(e.offset); cuts.add(e.offset + e.length); }
  const points = [...cuts].filter((p) => p >= 0 && p <= text.length).sort((a, b) => a - b);
  for (let i = 0; i < points.length - 1; i++) {
    const start = points[i], end = points[i + 1];
    let node = document.createTextNode(text.slice(start, end));
    const active = entities.filter((e) => e.offset <= start && start < e.offset + e.length);
    for (let j = active.length - 1; j >= 0; j--) node = wrapEntity(node, active[j]);
    fragment.append(node);
  }
  return fragment;
}

function chatName(chat) {
  return chat.type === "private" ? "Private chat with Condensa" : chat.title;
}

function renderChats() {
  const nav = $("chats");
  nav.replaceChildren();
  for (const chat of state.chats) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = chatName(chat);
    button.dataset.chatId = chat.id;
    button.className = chat.id === state.current.id ? "active" : "";
    button.addEventListener("click", () => selectChat(chat.id));
    nav.append(button);
  }
  const group = state.current.type !== "private";
  $("speaker-box").hidden = !group;
  $("chat-title").textContent = chatName(state.current);
  const mention = "@" + state.bot.username;
  $("chat-hint").textContent = state.current.id === state.elsewhere
    ? `Condensa is not in this chat: reply to a message with ${mention} (or ${mention} keywords) to summon it.`
    : `Type ${mention} and a link or a short text for inline results.`;
}

function selectChat(chatId) {
  state.current = state.chats.find((c) => c.id === chatId);
  state.speaker = state.current.type === "private" ? state.me : state.members[0];
  $("speaker").value = String(state.speaker.id);
  clearReply();
  renderChats();
  renderSamples();
  renderMessages();
}

function messageBubble(message) {
  const mine = message.from && !message.from.is_bot;
  const bubble = document.createElement("div");
  bubble.className = "bubble" + (mine ? " mine" : "");
  bubble.dataset.messageId = message.message_id;
  if (state.current.type !== "private" && message.from) {
    const author = document.createElement("div");
    author.className = "author";
    author.textContent = message.from.first_name;
    bubble.append(author);
  }
  if (message.via_bot) {
    const via = document.createElement("div");
    via.className = "via";
    via.textContent = "via @" + message.via_bot.username;
    bubble.append(via);
  }
  if (message.forward_origin) {
    const label = document.createElement("div");
    label.className = "forward-label";
    const origin = message.forward_origin.sender_user;
    label.textContent = "Forwarded from " + (origin ? origin.first_name : "someone");
    bubble.append(label);
  }
  if (message.reply_to_message) {
    const quote = document.createElement("div");
    quote.className = "quote";
    const replied = message.reply_to_message;
    quote.textContent = replied.text || replied.caption ||
      (replied.document ? "📄 " + replied.document.file_name : "…");
    bubble.append(quote);
  }
  if (message.photo) {
    const image = document.createElement("img");
    image.src = "/api/file/" + encodeURIComponent(message.photo[message.photo.length - 1].file_id);
    image.alt = "photo from " + (message.from ? message.from.first_name : "the bot");
    bubble.append(image);
  }
  const recording = message.voice || message.audio || message.video_note;
  if (recording) {
    const player = document.createElement("audio");
    player.className = "voice";
    player.controls = true;
    player.src = "/api/file/" + encodeURIComponent(recording.file_id);
    bubble.append(player);
  }
  if (message.document) {
    const link = document.createElement("a");
    link.className = "document";
    link.href = "/api/file/" + encodeURIComponent(message.document.file_id);
    link.textContent = "📄 " + (message.document.file_name || "document");
    bubble.append(link);
  }
  const text = message.text ?? message.caption;
  if (text) {
    const body = document.createElement("div");
    body.className = "body";
    body.append(renderEntities(text, message.entities || message.caption_entities));
    bubble.append(body);
  }
  const keyboard = message.reply_markup && message.reply_markup.inline_keyboard;
  if (keyboard) {
    const grid = document.createElement("div");
    grid.className = "keyboard";
    for (const row of keyboard) {
      const line = document.createElement("div");
      line.className = "row";
      for (const key of row) {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = key.text;
        button.addEventListener("click", () => press(message.message_id, key.callback_data));
        line.append(button);
      }
      grid.append(line);
    }
    bubble.append(grid);
  }
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = message.edit_date ? "edited" : "";
  bubble.append(meta);
  const reply = document.createElement("button");
  reply.type = "button";
  reply.className = "reply-button";
  reply.title = "Reply";
  reply.textContent = "↩";
  reply.addEventListener("click", () => setReply(message));
  bubble.append(reply);
  return bubble;
}

function renderMessages() {
  const list = state.messages[state.current.id] || [];
  const box = $("messages");
  box.replaceChildren(...list.map(messageBubble));
  box.scrollTop = box.scrollHeight;
}

function upsertMessage(message) {
  const chatId = message.chat.id;
  const list = state.messages[chatId] || (state.messages[chatId] = []);
  const index = list.findIndex((m) => m.message_id === message.message_id);
  if (index >= 0) list[index] = message; else list.push(message);
  if (chatId === state.current.id) {
    const box = $("messages");
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    const existing = box.querySelector(`[data-message-id="${message.message_id}"]`);
    const bubble = messageBubble(message);
    if (existing) existing.replaceWith(bubble); else box.append(bubble);
    if (nearBottom || !existing) box.scrollTop = box.scrollHeight;
    if (message.from && message.from.is_bot) $("typing").hidden = true;
  }
}

let typingTimer = null;
function showTyping(chatId, draft = null) {
  if (chatId !== state.current.id) return;
  const box = $("typing");
  // A message draft (text being written, as Telegram shows it) or "is typing…"; the
  // typing action repeats while a draft is shown and must not hide it.
  const showingDraft = !box.hidden && box.classList.contains("draft");
  if (draft !== null || !showingDraft) {
    box.textContent = draft ?? "Condensa is typing…";
    box.classList.toggle("draft", draft !== null);
  }
  box.hidden = false;
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => { box.hidden = true; }, draft === null ? 5000 : 30000);
}

let toastTimer = null;
function toast(text) {
  const box = $("toast");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 2500);
}

function setReply(message) {
  state.replyTo = message;
  $("reply-text").textContent = "Replying to: " + (message.text || message.caption ||
    (message.document ? message.document.file_name : "message")).slice(0, 80);
  $("reply-box").hidden = false;
  $("text").focus();
}

function clearReply() {
  state.replyTo = null;
  $("reply-box").hidden = true;
}

async function post(url, body) {
  const response = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" },
                                      body: JSON.stringify(body) });
  if (!response.ok) toast(await response.text());
}

async function sendText(text, forwarded) {
  await post("/api/send", { chat_id: state.current.id, user_id: state.speaker.id, text,
                            forwarded, reply_to: state.replyTo ? state.replyTo.message_id : null });
  clearReply();
}

// Inline mode: "@bot <query>" in the composer asks the bot for results, as Telegram does
// while you type; picking one posts it into the chat "via @bot".
let inlineTimer = null;
let inlineAsked = "";
function inlineQuery() {
  const text = $("text").value;
  const match = text.match(new RegExp("^@" + state.bot.username + "\\s+(\\S[\\s\\S]{2,})$", "i"));
  clearTimeout(inlineTimer);
  if (!match) { hideInline(); return; }
  inlineTimer = setTimeout(() => askInline(match[1].trim()), 600);
}

function hideInline() {
  inlineAsked = "";
  $("inline-results").hidden = true;
  $("inline-results").replaceChildren();
}

async function askInline(query) {
  if (query === inlineAsked) return;
  inlineAsked = query;
  const box = $("inline-results");
  box.replaceChildren(document.createTextNode("Asking Condensa…"));
  box.hidden = false;
  const chat = state.current, speaker = state.speaker;
  const response = await fetch("/api/inline", { method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ chat_id: chat.id, user_id: speaker.id, query }) });
  if (inlineAsked !== query) return;  // the text changed meanwhile
  if (!response.ok) { hideInline(); toast(await response.text()); return; }
  const answer = await response.json();
  box.replaceChildren();
  if (answer.results.length === 0) box.append(document.createTextNode("No results"));
  for (const result of answer.results) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "inline-result";
    const title = document.createElement("b");
    title.textContent = result.title;
    const preview = document.createElement("span");
    preview.textContent = result.text.slice(0, 90);
    button.append(title, preview);
    button.addEventListener("click", async () => {
      hideInline();
      $("text").value = "";
      await post("/api/inline/choose", { chat_id: chat.id, user_id: speaker.id,
                                         query_id: answer.query_id, result_id: result.id });
    });
    box.append(button);
  }
}

async function press(messageId, data) {
  await post("/api/press", { chat_id: state.current.id, user_id: state.speaker.id,
                             message_id: messageId, data });
}

// The length of a recording, as a Telegram client reports it with a voice note.
function audioDuration(file) {
  return new Promise((resolve) => {
    const audio = document.createElement("audio");
    audio.preload = "metadata";
    audio.onloadedmetadata = () => resolve(Number.isFinite(audio.duration) ? audio.duration : 0);
    audio.onerror = () => resolve(0);
    audio.src = URL.createObjectURL(file);
  });
}

async function upload(file, extra = {}) {
  const form = new FormData();
  form.append("chat_id", state.current.id);
  form.append("user_id", state.speaker.id);
  if (state.replyTo) form.append("reply_to", state.replyTo.message_id);
  form.append("caption", $("text").value.trim());
  if (file.type.startsWith("audio/") || file.type.startsWith("video/")) {
    form.append("duration", extra.duration ?? await audioDuration(file));
  }
  if (extra.voice) form.append("voice", "1");
  form.append("file", file, file.name);
  const response = await fetch("/api/upload", { method: "POST", body: form });
  if (!response.ok) toast(await response.text());
  $("text").value = "";
  clearReply();
}

// Press once to record a voice note with the microphone, again to send it.
let recorder = null;
async function toggleRecording() {
  if (recorder) {
    recorder.stop();
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    toast("No microphone: " + error.message);
    return;
  }
  const chunks = [];
  const started = performance.now();
  const clock = setInterval(() => {
    $("record").dataset.seconds = ((performance.now() - started) / 1000).toFixed(1);
  }, 250);
  recorder = new MediaRecorder(stream);
  recorder.ondataavailable = (event) => chunks.push(event.data);
  recorder.onstop = async () => {
    clearInterval(clock);
    delete $("record").dataset.seconds;
    stream.getTracks().forEach((track) => track.stop());
    const type = recorder.mimeType || "audio/webm";
    recorder = null;
    $("record").classList.remove("recording");
    const note = new File(chunks, "voice.webm", { type });
    await upload(note, { voice: true, duration: (performance.now() - started) / 1000 });
  };
  recorder.start();
  $("record").classList.add("recording");
}

function renderSamples() {
  const box = $("samples");
  box.replaceChildren();
  const group = state.current.type !== "private";
  for (const sample of state.samples[group ? "group" : "private"] || []) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = sample.label;
    button.addEventListener("click", () => runSample(sample));
    box.append(button);
  }
}

async function runSample(sample) {
  if (sample.text) { await sendText(sample.text, Boolean(sample.forwarded)); return; }
  for (const line of sample.lines || []) {
    const speaker = state.members.find((m) => m.first_name === line.from) || state.members[0];
    await post("/api/send", { chat_id: state.current.id, user_id: speaker.id, text: line.text });
  }
}

function connect() {
  const socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  socket.addEventListener("message", (event) => {
    const data = JSON.parse(event.data);
    if (data.type === "message") upsertMessage(data.message);
    else if (data.type === "typing") showTyping(data.chat_id);
    else if (data.type === "draft") showTyping(data.chat_id, data.text);
    else if (data.type === "toast") toast(data.text);
  });
  socket.addEventListener("close", () => setTimeout(connect, 1000));
}

async function main() {
  const response = await fetch("/api/state");
  Object.assign(state, await response.json());
  const speaker = $("speaker");
  for (const member of state.members) {
    const option = document.createElement("option");
    option.value = member.id;
    option.textContent = member.first_name;
    speaker.append(option);
  }
  speaker.addEventListener("change", () => {
    state.speaker = state.members.find((m) => String(m.id) === speaker.value);
  });
  $("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("text").value;
    if (!text.trim()) return;
    $("text").value = "";
    hideInline();
    await sendText(text, $("forwarded").checked);
  });
  $("text").addEventListener("input", inlineQuery);
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("file").addEventListener("change", async () => {
    const file = $("file").files[0];
    if (file) await upload(file);
    $("file").value = "";
  });
  $("record").addEventListener("click", toggleRecording);
  $("reply-clear").addEventListener("click", clearReply);
  selectChat(state.chats[0].id);
  connect();
  document.body.dataset.ready = "true";
}

main();
