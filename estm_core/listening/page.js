// The listening test's page: one trial at a time, answers sent as they are given (and sent again until the server
// has them), keyboard first. The server tells it nothing about what it plays: no file, system or trial names.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const RETRY_MS = 2000;
const state = { listener: null, trial: null, setup: null, sending: false };
let players = [];     // the current trial's Audio elements (quality: the reference first)
let selected = null;  // quality: the version whose slider the arrows move; its index in players
let emotion = null;   // the current emotion trial's answer so far
let quality = null;   // the current quality trial's: which versions were played and rated

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function say(message, isError = false) {
  $("status").textContent = message;
  $("status").classList.toggle("error", isError);
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, options);
  const value = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(value.error || `the server answered ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return value;
}

// ------------------------------------------------------------------------------------------------ playing

function stopAll() {
  players.forEach((player) => { player.retired = true; player.pause(); });
  players = [];
}

function makePlayer(url, button, label, playingLabel = label) {
  const player = new Audio(url);
  player.preload = "auto";
  const show = () => {
    button.classList.toggle("playing", !player.paused);
    button.textContent = player.paused ? `\u25B6 ${label}` : `\u275A\u275A ${playingLabel}`;
  };
  player.addEventListener("play", show);
  player.addEventListener("pause", show);
  player.addEventListener("ended", show);
  player.addEventListener("error", () => {
    if (!player.retired) say("This sound could not be loaded: reload the page and go on with your listener id.", true);
  });
  show();
  return player;
}

function toggle(index) {
  const player = players[index];
  if (!player) return;
  if (!player.paused) { player.pause(); return; }
  const playing = players.find((other) => !other.paused);
  players.forEach((other) => other.pause());
  // switching between versions keeps the place in the music, so they are compared on the same passage
  if (playing && state.trial.kind === "quality" && playing.currentTime < (player.duration || Infinity)) {
    player.currentTime = playing.currentTime;
  } else if (player.ended) {
    player.currentTime = 0;
  }
  player.play().catch(() => say("Your browser did not play the sound: press Space or the play button.", true));
}

// ------------------------------------------------------------------------------------------------ trials

function show(where) {
  stopAll();
  state.trial = where.trial;
  const done = where.answered;
  $("progress").hidden = false;
  $("progress-fill").style.width = `${(100 * done) / where.total}%`;
  $("progress-text").textContent = `listener ${where.listener} \u00B7 ${done} of ${where.total} answered`;
  for (const id of ["welcome", "emotion", "quality", "done"]) $(id).hidden = true;
  if (!where.trial) {
    $("done-count").textContent = String(where.total);
    $("done").hidden = false;
    return;
  }
  if (where.trial.kind === "emotion") showEmotion(where.trial);
  else showQuality(where.trial);
}

function showEmotion(trial) {
  emotion = { played: false, quadrant: null, valence: null, arousal: null };
  players = [makePlayer(trial.audio, $("emotion-play"), "Play", "Pause")];
  players[0].addEventListener("play", () => { emotion.played = true; updateEmotion(); });
  for (const scale of ["valence", "arousal"]) {
    $(scale).value = "0";
    $(scale).closest(".scale").classList.add("untouched");
  }
  $("emotion").hidden = false;
  updateEmotion();
}

function choose(quadrant) {
  if (!emotion.played) { say("Play the music first (Space)."); return; }
  emotion.quadrant = quadrant;
  updateEmotion();
}

function slide(scale) {
  emotion[scale] = Number($(scale).value);
  $(scale).closest(".scale").classList.remove("untouched");
  updateEmotion();
}

function updateEmotion() {
  document.querySelectorAll(".quadrant").forEach((group) =>
    group.classList.toggle("chosen", group.dataset.quadrant === emotion.quadrant));
  const marker = document.querySelector(".marker");
  if (marker) {
    marker.setAttribute("visibility", emotion.valence === null && emotion.arousal === null ? "hidden" : "visible");
    marker.setAttribute("cx", String(230 + 185 * (emotion.valence || 0)));
    marker.setAttribute("cy", String(210 - 175 * (emotion.arousal || 0)));
  }
  $("emotion-next").disabled = state.sending || !emotion.quadrant;
  if (!state.sending) {
    say(!emotion.played ? "Press Space to play." : emotion.quadrant ? "Enter for the next one." :
      "Choose the emotion: 1 to 4.");
  }
}

function showQuality(trial) {
  quality = { played: new Set(), rated: new Set() };
  selected = null;
  players = [makePlayer(trial.reference, $("reference-play"), "Reference")];
  const rows = $("versions");
  rows.replaceChildren();
  trial.versions.forEach((url, place) => {
    const number = place + 1;
    const row = document.createElement("div");
    row.className = "version untouched";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "play";
    const slider = document.createElement("input");
    Object.assign(slider, { type: "range", min: "0", max: "100", step: "1", value: "0" });
    slider.setAttribute("aria-label", `rating of version ${number}`);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = "\u2013";
    row.append(button, slider, value);
    rows.append(row);
    const player = makePlayer(url, button, `Version ${number}`);
    player.addEventListener("play", () => { quality.played.add(number); updateQuality(); });
    players.push(player);
    button.addEventListener("click", () => { pick(number); toggle(number); });
    const rate = () => {
      quality.rated.add(number);
      row.classList.remove("untouched");
      value.textContent = slider.value;
      pick(number, false);
      updateQuality();
    };
    slider.addEventListener("input", rate);
    slider.addEventListener("change", rate);
    slider.addEventListener("pointerdown", rate);
  });
  $("quality").hidden = false;
  updateQuality();
}

function pick(number, focus = true) {
  selected = number;
  $("versions").querySelectorAll(".version").forEach((row, place) =>
    row.classList.toggle("selected", place + 1 === number));
  if (focus) sliders()[number - 1].focus();
}

function sliders() {
  return [...$("versions").querySelectorAll("input[type=range]")];
}

function nudge(step) {
  if (!selected) return;
  const slider = sliders()[selected - 1];
  slider.value = String(Math.max(0, Math.min(100, Number(slider.value) + step)));
  slider.dispatchEvent(new Event("input"));
}

function updateQuality() {
  const count = state.trial.versions.length;
  const ready = quality.played.size === count && quality.rated.size === count;
  $("quality-next").disabled = state.sending || !ready;
  if (!state.sending) {
    say(ready ? "Enter for the next one." : quality.played.size < count ?
      `Play every version (keys 1 to ${count}); R plays the reference.` : "Rate every version (\u2191 \u2193).");
  }
}

// ------------------------------------------------------------------------------------------------ answers

async function send(answer) {
  if (state.sending) return;
  state.sending = true;
  const position = state.trial.position;
  $("emotion-next").disabled = $("quality-next").disabled = true;
  try {
    for (;;) {
      try {
        show(await api("/api/answer", { listener: state.listener, position, answer }));
        say("Saved.");
        return;
      } catch (error) {
        if (error.status === 409) {  // sent twice, or another tab moved on: carry on from where the server is
          show(await api("/api/start", { listener: state.listener }));
          return;
        }
        if (error.status && error.status !== 503) { say(error.message, true); return; }
        say("Not saved yet: the server is not answering. Your answer is kept and sent again every few seconds.",
          true);
        await sleep(RETRY_MS);
      }
    }
  } catch (error) {
    say(`${error.message}: reload the page and go on with your listener id.`, true);
  } finally {
    state.sending = false;
  }
}

function next() {
  if (!state.trial || state.sending) return;
  if (state.trial.kind === "emotion" && !$("emotion-next").disabled) {
    send({ quadrant: emotion.quadrant, valence: emotion.valence, arousal: emotion.arousal });
  } else if (state.trial.kind === "quality" && !$("quality-next").disabled) {
    send({ ratings: sliders().map((slider) => Number(slider.value)) });
  }
}

async function start(event) {
  event.preventDefault();
  const typed = $("listener").value.trim();
  $("start").disabled = true;
  try {
    const where = await api("/api/start", { listener: typed });
    state.listener = where.listener;
    localStorage.setItem("estm-listener", where.listener);
    show(where);
    say(typed ? "Welcome back." : `Your listener id is ${where.listener}: note it to go on later.`);
  } catch (error) {
    say(error.status ? error.message : "The server is not answering: try again in a moment.", true);
  } finally {
    $("start").disabled = false;
  }
}

// ------------------------------------------------------------------------------------------------ keyboard

function onKey(event) {
  if (event.target === $("listener") || event.ctrlKey || event.metaKey || event.altKey || !state.trial) return;
  const key = event.key;
  const kind = state.trial.kind;
  let handled = true;
  if (key === " ") toggle(kind === "quality" && selected ? selected : 0);
  else if (key === "Enter") next();
  else if (kind === "emotion" && /^[1-4]$/.test(key)) choose(state.setup.quadrants[Number(key) - 1].quadrant);
  else if (kind === "quality" && /^[1-9]$/.test(key) && Number(key) <= state.trial.versions.length) {
    pick(Number(key));
    toggle(Number(key));
  } else if (kind === "quality" && (key === "r" || key === "R")) toggle(0);
  else if (kind === "quality" && (key === "ArrowUp" || key === "ArrowDown") &&
           !(event.target instanceof HTMLInputElement)) nudge(key === "ArrowUp" ? 5 : -5);
  else handled = false;
  if (handled) event.preventDefault();
}

// ------------------------------------------------------------------------------------------------ picture

function svg(name, attributes, parent, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  if (parent) parent.append(node);
  return node;
}

// Russell's circumplex: valence across, arousal up; each quadrant a button numbered as its key
function drawCircumplex(quadrants) {
  const picture = svg("svg", { viewBox: "0 0 460 420", role: "group", "aria-label": "emotions" });
  const places = { Q1: [235, 35], Q2: [45, 35], Q3: [45, 215], Q4: [235, 215] };
  for (const quadrant of quadrants) {
    const [x, y] = places[quadrant.quadrant];
    const group = svg("g", { class: "quadrant", role: "button", "data-quadrant": quadrant.quadrant }, picture);
    group.dataset.quadrant = quadrant.quadrant;
    svg("rect", { x, y, width: 180, height: 170, rx: 10 }, group);
    svg("text", { x: x + 90, y: y + 58, "text-anchor": "middle", class: "number" }, group, quadrant.key);
    svg("text", { x: x + 90, y: y + 95, "text-anchor": "middle", class: "words" }, group, quadrant.words);
    svg("text", { x: x + 90, y: y + 122, "text-anchor": "middle", class: "plain" }, group,
      `${quadrant.valence}, ${quadrant.arousal}`);
    group.addEventListener("click", () => choose(quadrant.quadrant));
  }
  svg("line", { x1: 32, y1: 210, x2: 428, y2: 210, class: "axis" }, picture);
  svg("line", { x1: 230, y1: 398, x2: 230, y2: 22, class: "axis" }, picture);
  svg("path", { d: "M430 210 l-10 -5 v10 z M230 20 l-5 10 h10 z", class: "axis" }, picture);
  svg("text", { x: 45, y: 414, class: "axis-label" }, picture, "\u2190 unpleasant");
  svg("text", { x: 415, y: 414, class: "axis-label", "text-anchor": "end" }, picture, "pleasant \u2192");
  svg("text", { x: 238, y: 16, class: "axis-label" }, picture, "energetic");
  svg("text", { x: 238, y: 414, class: "axis-label" }, picture, "calm");
  svg("circle", { r: 8, cx: 230, cy: 210, class: "marker", visibility: "hidden" }, picture);
  $("circumplex").replaceChildren(picture);
}

async function boot() {
  $("start-form").addEventListener("submit", start);
  $("emotion-play").addEventListener("click", () => toggle(0));
  $("reference-play").addEventListener("click", () => { toggle(0); });
  $("emotion-next").addEventListener("click", next);
  $("quality-next").addEventListener("click", next);
  for (const scale of ["valence", "arousal"]) {
    $(scale).addEventListener("input", () => slide(scale));
    $(scale).addEventListener("pointerdown", () => slide(scale));
  }
  document.addEventListener("keydown", onKey, true);
  $("listener").value = localStorage.getItem("estm-listener") || "";
  for (;;) {
    try {
      state.setup = await api("/api/setup");
      break;
    } catch (error) {
      say("The server is not answering yet; trying again.", true);
      await sleep(RETRY_MS);
    }
  }
  drawCircumplex(state.setup.quadrants);
  say("");
  $("listener").focus();
}

boot();
