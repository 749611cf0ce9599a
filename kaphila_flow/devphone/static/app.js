// Kaphila dev phone. Plain JavaScript, no build step, nothing from the network.
// Every text from a call goes into the page with textContent, never as HTML.
"use strict";

(() => {
  const TOKEN = new URLSearchParams(location.search).get("token");
  const KEYS = "0123456789*#";
  const OUTCOMES = [
    ["completed", "Completed", "#12a150"],
    ["forwarded", "Forwarded", "#7a4cd9"],
    ["voicemail", "Voicemail", "#0f8b8d"],
    ["hung-up", "Hung up", "#3f51d8"],
    ["declined", "Declined", "#c77700"],
    ["no-answer", "No answer", "#98a2b3"],
    ["failed", "Failed", "#d92d42"],
  ];
  const CHART_WIDTH = 500;
  const STATE_LABELS = {
    ringing: "Ringing",
    answered: "In call",
    forwarded: "Forwarded",
    ended: "Ended",
  };

  const page = {
    speed: 1,
    simAt: 0,
    realAt: 0,
    calls: new Map(),
    selected: null,
    orphans: 0,
    bannerTimer: null,
  };

  // -- helpers ---------------------------------------------------------------------------

  function $(selector, root) {
    return (root || document).querySelector(selector);
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svg(tag, attributes) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      node.setAttribute(name, String(value));
    }
    return node;
  }

  function pageUrl(path) {
    const url = new URL(path, location.href);
    if (TOKEN) url.searchParams.set("token", TOKEN);
    return url;
  }

  function simNow() {
    return page.simAt + ((performance.now() - page.realAt) / 1000) * page.speed;
  }

  function realSeconds(simSeconds) {
    return simSeconds / page.speed;
  }

  function seconds(value) {
    return `${Math.max(0, value).toFixed(1)} s`;
  }

  function clip(text, length) {
    const value = String(text);
    return value.length > length ? `${value.slice(0, length - 1)}…` : value;
  }

  function showBanner(message) {
    const banner = $("#notice");
    banner.textContent = message;
    banner.hidden = false;
    clearTimeout(page.bannerTimer);
    page.bannerTimer = setTimeout(() => {
      banner.hidden = true;
    }, 7000);
  }

  async function post(path, body) {
    let response;
    try {
      response = await fetch(pageUrl(path), {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body || {}),
      });
    } catch (error) {
      showBanner(`The dev phone did not answer: ${error}`);
      return false;
    }
    if (response.ok) return true;
    let message = response.statusText;
    try {
      message = (await response.json()).error || message;
    } catch (_) {
      // not JSON: keep the status text
    }
    showBanner(message);
    return false;
  }

  function speak(text) {
    if (!$("#speak").checked || !("speechSynthesis" in window)) return;
    const utterance = new SpeechSynthesisUtterance(text);
    utterance.rate = Math.min(2, Math.max(0.5, page.speed));
    window.speechSynthesis.speak(utterance);
  }

  // -- one call --------------------------------------------------------------------------

  class CallView {
    constructor(id) {
      this.id = id;
      this.placedAt = null;
      this.ringsUntil = null;
      this.state = "ringing";
      this.gather = null;
      this.ended = null;
      this.result = null;
      this.outcome = null;
      this.botHungUp = false;
      this.held = false;
      this.forwarded = false;
      this.keysLine = null;
      this.speaking = [];
      this.entries = 0;
      this.answeredAt = null;
      this.endedAt = null;

      const node = $("#call-template").content.firstElementChild.cloneNode(true);
      this.node = node;
      node.dataset.callId = id;
      this.parts = {
        number: $(".number", node),
        callId: $(".call-id", node),
        callee: $(".callee", node),
        badge: $(".badge", node),
        clock: $(".clock", node),
        ringLeft: $(".ring-left", node),
        gather: $(".gather", node),
        gatherLeft: $(".gather-left", node),
        digits: $(".digits", node),
        gatherMeta: $(".gather-meta", node),
        gatherFill: $(".gather-fill", node),
        transcript: $(".transcript", node),
        result: $(".result", node),
        resultLine: $(".result-line", node),
        traceback: $(".traceback", node),
        endedDetail: $(".ended-detail", node),
        timeline: $(".timeline", node),
        timelineCount: $(".timeline-count", node),
      };
      this.parts.callId.textContent = id ? `call ${id}` : "not placed";
      node.addEventListener("click", () => select(this));
      for (const button of node.querySelectorAll("[data-act]")) {
        button.addEventListener("click", (event) => {
          event.stopPropagation();
          select(this);
          this.act(button.dataset.act);
        });
      }
      for (const key of node.querySelectorAll("[data-key]")) {
        key.addEventListener("click", (event) => {
          event.stopPropagation();
          select(this);
          this.press(key.dataset.key);
        });
      }
      this.setState("ringing");
    }

    get live() {
      return this.state === "answered" || this.state === "forwarded";
    }

    setState(state) {
      this.state = state;
      this.node.dataset.state = state;
      this.parts.badge.textContent = STATE_LABELS[state] || state;
      if (state === "ended") {
        this.parts.gather.hidden = true;
        for (const line of this.speaking) line.classList.remove("speaking");
        this.speaking = [];
      }
      render();
    }

    act(what) {
      const path = `api/calls/${encodeURIComponent(this.id)}`;
      if (what === "answer" || what === "machine" || what === "unknown") {
        post(`${path}/answer`, { how: what === "answer" ? "human" : what });
      } else if (what === "decline") {
        post(`${path}/decline`);
      } else if (what === "hangup") {
        post(`${path}/hangup`);
      }
    }

    press(key) {
      if (!this.live) return;
      const button = this.node.querySelector(`[data-key="${key}"]`);
      if (button) {
        button.classList.add("flash");
        setTimeout(() => button.classList.remove("flash"), 160);
      }
      post(`api/calls/${encodeURIComponent(this.id)}/keys`, { keys: key });
    }

    // what the call says and does

    line(kind, who, text) {
      const item = el("li", `line ${kind}`);
      if (who) item.append(el("span", "who", who));
      item.append(document.createTextNode(text));
      this.parts.transcript.append(item);
      this.parts.transcript.scrollTop = this.parts.transcript.scrollHeight;
      this.keysLine = null;
      return item;
    }

    botSays(text, label, at) {
      const item = this.line("bot", label, text);
      item.classList.add("speaking");
      this.speaking.push(item);
      if (at >= page.helloAt - 1) speak(text);
    }

    keyPressed(digit) {
      if (this.keysLine) {
        this.keysLine.lastChild.textContent += digit;
        return;
      }
      const item = this.line("you", "You pressed", digit);
      this.keysLine = item;
    }

    playbackDone() {
      const item = this.speaking.shift();
      if (item) item.classList.remove("speaking");
    }

    entry(notice, direction, name, what) {
      const at = this.placedAt === null ? notice.at : notice.at - this.placedAt;
      const item = el("li", `entry kind-${notice.kind}`);
      item.append(
        el("span", "t", `+${at.toFixed(2)}s`),
        el("span", "dir", direction),
        el("span", "name", name),
        el("span", "what", what || ""),
      );
      item.title = JSON.stringify(notice.detail);
      const box = this.parts.timeline;
      const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
      box.append(item);
      if (atBottom) box.scrollTop = box.scrollHeight;
      this.entries += 1;
      this.parts.timelineCount.textContent = `(${this.entries})`;
    }

    ringing(notice) {
      const detail = notice.detail;
      this.placedAt = notice.at;
      this.ringsUntil = detail.ringsUntil;
      this.held = detail.callee === "held";
      this.parts.number.textContent = `+${detail.number}`;
      this.parts.callee.textContent =
        detail.callee === "held" ? "you hold this phone" : `scripted callee: ${detail.callee}`;
      this.entry(notice, "☎", "ringing", `rings up to ${detail.ringTimeout} s${detail.useAmd ? ", AMD on" : ""}`);
    }

    request(notice) {
      const detail = notice.detail;
      const path = notice.name;
      let what = "";
      if (path === "/voice") {
        what = detail.text;
        if (typeof detail.text === "string") this.botSays(detail.text, "Bot says", notice.at);
      } else if (path === "/play") {
        what = detail.file;
        this.botSays(`♪ ${detail.file}`, "Bot plays", notice.at);
      } else if (path === "/gather") {
        const digits = detail.numDigits || 1;
        what = `${digits} digit${digits === 1 ? "" : "s"}${detail.text ? `: ${detail.text}` : ""}`;
        if (typeof detail.text === "string" && detail.text) {
          this.line("bot", "Bot asks", detail.text);
          if (notice.at >= page.helloAt - 1) speak(detail.text);
        }
      } else if (path === "/forwardcall") {
        what = detail.forwardNumber;
        this.forwarded = true;
        if (this.state !== "ended") this.setState("forwarded");
        this.line("info", null, `Forwarded to +${detail.forwardNumber}`);
      } else if (path === "/hangup") {
        this.botHungUp = true;
        this.line("info", null, "The bot hung up");
      }
      this.entry(notice, "→", `POST ${path}`, clip(what === undefined ? "" : what, 160));
    }

    event(notice) {
      const detail = notice.detail;
      let what = "";
      switch (notice.name) {
        case "call.answered":
          this.answeredAt = notice.at;
          this.setState("answered");
          what = detail.amd ? `AMD ${detail.amd.status}` : "";
          this.line("info", null, detail.amd ? `Answered · AMD says ${detail.amd.status}` : "Answered");
          break;
        case "dtmf.received":
          what = detail.digit;
          this.keyPressed(String(detail.digit));
          break;
        case "gather.progress":
        case "gather.complete":
        case "gather.timeout":
          what = detail.digits ? `digits ${detail.digits}` : "no digits";
          if (notice.name === "gather.timeout") this.line("info", null, "No key in time");
          break;
        case "tts.played":
          what = detail.playbackId || "";
          this.playbackDone();
          break;
        case "call.timeout":
          this.line("info", null, "Rang out: no answer");
          break;
        case "call.ended":
          what = `${detail.endReason || ""}${detail.callDuration ? `, ${detail.callDuration} s` : ""}`;
          break;
        default:
          if (detail.recording && detail.recording.filename) what = detail.recording.filename;
      }
      this.entry(notice, "←", notice.name, clip(what, 160));
    }

    gatherState(notice) {
      const detail = notice.detail;
      this.gather = detail.active ? { ...detail, since: notice.at } : null;
      this.parts.gather.hidden = !detail.active;
      if (!detail.active) return;
      const expected = detail.expected || 1;
      this.parts.digits.textContent = detail.digits + "•".repeat(Math.max(0, Math.min(8, expected) - detail.digits.length));
      const meta = [`${expected} digit${expected === 1 ? "" : "s"}`];
      if (detail.finishOnKey) meta.push(`ends with ${detail.finishOnKey}`);
      if (detail.validDigits) meta.push(`keys ${detail.validDigits}`);
      this.parts.gatherMeta.textContent = meta.join(" · ");
      this.tick();
    }

    endedState(notice) {
      this.ended = notice.detail;
      this.endedAt = notice.at;
      this.tick();
      this.setState("ended");
      const detail = notice.detail;
      if (!detail.wasAnswered && (detail.endReason === "busy" || detail.endReason === "rejected")) this.line("info", null, "Declined");
      else if (detail.wasAnswered && !this.botHungUp) {
        this.line("info", null, this.held ? "You hung up" : "The callee hung up");
      }
      this.settle();
    }

    showResult(notice) {
      const detail = notice.detail;
      this.result = detail;
      const box = this.parts.result;
      box.hidden = false;
      const failed = detail.error !== null && detail.error !== undefined;
      box.classList.toggle("failed", failed);
      this.parts.resultLine.textContent = failed
        ? `${detail.status}: ${detail.error}`
        : `${detail.status} · returned ${detail.value}`;
      this.parts.traceback.hidden = !detail.traceback;
      this.parts.traceback.textContent = detail.traceback || "";
      this.entry(notice, failed ? "✗" : "✓", "flow result", failed ? detail.error : detail.value);
      if (!this.id) {
        this.parts.number.textContent = `+${detail.number}`;
        this.setState("ended");
        this.ended = { wasAnswered: false, endReason: "not placed" };
      }
      this.settle();
    }

    settle() {
      const outcome = outcomeOf(this);
      if (outcome === this.outcome) return;
      this.outcome = outcome;
      if (outcome) this.node.dataset.outcome = outcome;
      if (outcome && this.state === "ended") {
        const found = OUTCOMES.find((o) => o[0] === outcome);
        const label = found ? found[1] : outcome;
        this.parts.badge.textContent = `Ended · ${label}`;
        this.parts.endedDetail.textContent =
          this.answeredAt !== null && this.endedAt !== null
            ? `${label} · talked ${this.parts.clock.textContent || "0:00"}`
            : label;
      }
      render();
    }

    tick() {
      const now = simNow();
      if (this.state === "ringing" && this.ringsUntil) {
        this.parts.ringLeft.textContent = `rings ${seconds(realSeconds(this.ringsUntil - now))} more`;
      }
      if (this.answeredAt !== null) {
        const end = this.endedAt !== null ? this.endedAt : now;
        const total = Math.max(0, realSeconds(end - this.answeredAt));
        const minutes = Math.floor(total / 60);
        this.parts.clock.textContent = `${minutes}:${String(Math.floor(total % 60)).padStart(2, "0")}`;
      }
      const gather = this.gather;
      if (gather && this.state !== "ended" && gather.until) {
        const left = realSeconds(gather.until - now);
        const span = Math.max(0.001, realSeconds(gather.until - gather.since));
        this.parts.gatherLeft.textContent = `${seconds(left)} left`;
        this.parts.gatherFill.style.width = `${Math.max(0, Math.min(100, (left / span) * 100))}%`;
      }
    }
  }

  function outcomeOf(call) {
    if (call.result && call.result.status === "failed") return "failed";
    const end = call.ended;
    if (!end) return null;
    if (!end.wasAnswered) return end.endReason === "busy" || end.endReason === "rejected" ? "declined" : "no-answer";
    if (end.amd === "MACHINE") return "voicemail";
    if (end.forwardedTo || call.forwarded) return "forwarded";
    return call.botHungUp ? "completed" : "hung-up";
  }

  // -- all calls -------------------------------------------------------------------------

  function callFor(id) {
    let call = page.calls.get(id);
    if (!call) {
      call = new CallView(id);
      page.calls.set(id, call);
      $("#calls").prepend(call.node);
      $("#empty").hidden = true;
      render();
    }
    return call;
  }

  function select(call) {
    if (page.selected === call) return;
    if (page.selected) page.selected.node.classList.remove("selected");
    page.selected = call;
    call.node.classList.add("selected");
  }

  function keyTarget() {
    if (page.selected && page.selected.live) return page.selected;
    let newest = null;
    for (const call of page.calls.values()) {
      if (call.live) newest = call;
    }
    return newest;
  }

  function render() {
    const counts = { placed: 0, ringing: 0, live: 0, ended: 0 };
    const outcomes = Object.fromEntries(OUTCOMES.map((o) => [o[0], 0]));
    for (const call of page.calls.values()) {
      if (call.id) counts.placed += 1;
      if (call.state === "ringing") counts.ringing += 1;
      else if (call.live) counts.live += 1;
      else if (call.state === "ended") counts.ended += 1;
      if (call.outcome && call.state === "ended") outcomes[call.outcome] += 1;
    }
    for (const [name, value] of Object.entries(counts)) {
      $(`[data-count="${name}"]`).textContent = String(value);
    }
    drawChart(outcomes);
  }

  function drawChart(outcomes) {
    const chart = $("#chart");
    chart.replaceChildren();
    const most = Math.max(1, ...Object.values(outcomes));
    const width = CHART_WIDTH / OUTCOMES.length;
    chart.append(svg("line", { class: "axis", x1: 0, x2: CHART_WIDTH, y1: 72.5, y2: 72.5 }));
    let total = 0;
    OUTCOMES.forEach(([name, label, colour], index) => {
      const value = outcomes[name];
      total += value;
      const height = (value / most) * 52;
      const x = index * width + 12;
      const bar = svg("rect", {
        x,
        y: 72 - height,
        width: width - 24,
        height: Math.max(height, 0),
        rx: 3,
        fill: colour,
        "data-outcome": name,
        "data-count": value,
      });
      const title = svg("title");
      title.textContent = `${label}: ${value}`;
      bar.append(title);
      const number = svg("text", { class: "bar-value", x: x + (width - 24) / 2, y: 68 - height, "text-anchor": "middle" });
      number.textContent = String(value);
      const caption = svg("text", { class: "bar-label", x: x + (width - 24) / 2, y: 87, "text-anchor": "middle" });
      caption.textContent = label;
      chart.append(bar, number, caption);
    });
    $("#chart-legend").textContent = total
      ? `Outcomes of ${total} ended call${total === 1 ? "" : "s"}`
      : "Outcomes appear as calls end";
  }

  function reset(hello) {
    page.speed = hello.speed;
    page.simAt = hello.now;
    page.helloAt = hello.now;
    page.realAt = performance.now();
    for (const call of page.calls.values()) call.node.remove();
    page.calls.clear();
    page.selected = null;
    page.orphans = 0;
    $("#empty").hidden = false;
    $("#speed").textContent = hello.speed === 1 ? "real time" : `speed ×${hello.speed}`;
    const dial = $("#dial");
    dial.hidden = !hello.canDial;
    if (hello.canDial && hello.numbers.length && !$("#dial-number").value) {
      $("#dial-number").value = hello.numbers[0];
    }
    render();
  }

  function handle(notice) {
    const id = notice.callId;
    switch (notice.kind) {
      case "ringing":
        callFor(id).ringing(notice);
        break;
      case "request":
        if (id) callFor(id).request(notice);
        break;
      case "event":
        callFor(id).event(notice);
        break;
      case "gather":
        callFor(id).gatherState(notice);
        break;
      case "ended":
        callFor(id).endedState(notice);
        break;
      case "result":
        if (id) {
          callFor(id).showResult(notice);
        } else {
          page.orphans += 1;
          callFor(`not placed ${page.orphans}`).showResult(notice);
        }
        break;
      case "dropped":
        showBanner(`This page fell behind and missed ${notice.detail.count} updates; reload it to catch up.`);
        break;
      default:
        break;
    }
  }

  // -- wiring ----------------------------------------------------------------------------

  function connect() {
    const connection = $("#connection");
    const source = new EventSource(pageUrl("api/events"));
    source.addEventListener("hello", (message) => {
      reset(JSON.parse(message.data));
      connection.dataset.state = "live";
      connection.textContent = "live";
    });
    source.addEventListener("notice", (message) => handle(JSON.parse(message.data)));
    source.addEventListener("error", () => {
      connection.dataset.state = source.readyState === EventSource.CLOSED ? "lost" : "connecting";
      connection.textContent = source.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting…";
    });
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement) return;
    if (!KEYS.includes(event.key) || event.key.length !== 1) return;
    const call = keyTarget();
    if (!call) return;
    event.preventDefault();
    select(call);
    call.press(event.key);
  });

  $("#dial").addEventListener("submit", async (event) => {
    event.preventDefault();
    const number = $("#dial-number").value.trim();
    if (!number) return;
    const button = $("#dial-button");
    button.disabled = true;
    try {
      await post("api/dial", { number });
    } finally {
      button.disabled = false;
    }
  });

  setInterval(() => {
    for (const call of page.calls.values()) {
      if (call.state !== "ended") call.tick();
    }
  }, 200);

  render();
  connect();
})();
