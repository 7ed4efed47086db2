/* Deskmate agent inbox: the live queue, one ticket, replies and article insertion.
 *
 * Plain ES2018, no framework, no build. Every string that comes from the
 * server is put into the page with textContent, value or setAttribute,
 * never with innerHTML.
 */
(function () {
  "use strict";

  var REASONS = {
    requested: "Asked for a person",
    // How many times is the ticket's own (the handover's summary): once is enough on a priority plan.
    low_confidence: "Bot unsure",
    premium_problem: "Premium: problem",
    not_helpful: "Answer didn't help",
    bot_unavailable: "Bot unavailable",
  };
  var STATUSES = { open: "Open", assigned: "Assigned", resolved: "Resolved" };
  var SENDERS = { visitor: "Visitor", bot: "Bot", agent: "Agent", system: "System" };
  var TICK_MS = 30 * 1000;
  var POLL_MS = 20 * 1000;
  var MAX_REPLY_CHARS = 4000;
  var TITLE = "Deskmate \u00b7 Inbox";

  // ---------------------------------------------------------------- page --

  function $(id) {
    return document.getElementById(id);
  }

  var meta = document.querySelector('meta[name="csrf-token"]');
  var CSRF = meta ? meta.getAttribute("content") || "" : "";
  var ME = {
    email: (document.body.getAttribute("data-staff-email") || "").toLowerCase(),
    name: document.body.getAttribute("data-staff-name") || "",
  };

  var ui = {
    live: $("dm-live"),
    liveText: $("dm-live-text"),
    countOpen: $("dm-count-open"),
    countAssigned: $("dm-count-assigned"),
    countResolved: $("dm-count-resolved"),
    queueError: $("dm-queue-error"),
    queueEmpty: $("dm-queue-empty"),
    queueLoading: $("dm-queue-loading"),
    queueList: $("dm-queue-list"),
    placeholder: $("dm-ticket-placeholder"),
    placeholderTitle: $("dm-placeholder-title"),
    placeholderText: $("dm-placeholder-text"),
    view: $("dm-ticket-view"),
    heading: $("dm-ticket-heading"),
    number: $("dm-ticket-number"),
    status: $("dm-ticket-status"),
    priority: $("dm-ticket-priority"),
    assignee: $("dm-ticket-assignee"),
    sla: $("dm-ticket-sla"),
    opened: $("dm-ticket-opened"),
    claim: $("dm-claim"),
    resolve: $("dm-resolve"),
    handback: $("dm-handback"),
    ticketError: $("dm-ticket-error"),
    ticketNotice: $("dm-ticket-notice"),
    conversation: $("dm-conversation"),
    messages: $("dm-messages"),
    reply: $("dm-reply"),
    replyText: $("dm-reply-text"),
    replySend: $("dm-reply-send"),
    replyOwner: $("dm-reply-owner"),
    replyCount: $("dm-reply-count"),
    filter: $("dm-article-filter"),
    articleList: $("dm-article-list"),
    customer: $("dm-customer"),
    earlier: $("dm-earlier"),
    whyReason: $("dm-why-reason"),
    whyFailed: $("dm-why-failed"),
    whyShown: $("dm-why-shown"),
    reopen: $("dm-reopen"),
    soundToggle: $("dm-sound-toggle"),
    desktopToggle: $("dm-desktop-toggle"),
    alertsNote: $("dm-alerts-note"),
    searchForm: $("dm-search"),
    searchInput: $("dm-search-input"),
    filters: $("dm-filters"),
    pager: $("dm-pager"),
    pagePrev: $("dm-page-prev"),
    pageNext: $("dm-page-next"),
    pageInfo: $("dm-page-info"),
    modeReply: $("dm-mode-reply"),
    modeNote: $("dm-mode-note"),
    replyLabel: $("dm-reply-label"),
    pending: $("dm-pending"),
    pendingText: $("dm-pending-text"),
    undo: $("dm-undo"),
    help: $("dm-help"),
    helpOpen: $("dm-help-open"),
    helpClose: $("dm-help-close"),
    othersBox: $("dm-others-box"),
    others: $("dm-others"),
  };

  if (!ui.queueList || !ui.view) {
    return; // not the inbox page
  }

  var state = {
    counts: null,
    tickets: [],
    selectedId: null,
    detail: null,
    ticketAbort: null,
    messagesKey: null,
    articles: null, // [{id, title, body}] once loaded
    articlesById: {},
    articlesError: null,
    articlesLoading: false,
    drafts: {},
    clockOffset: 0, // server clock minus this browser's, when the server says its time
    busy: false,
    sending: false,
    signingOut: false,
    noticeTimer: null,
    pollTimer: null,
    picker: { open: false, active: -1, matches: [] },
    // Which page of the queue is shown (the server filters, searches and pages).
    query: { view: "open", filter: "all", q: "", page: 1 },
    selectAfterLoad: null, // "first" or "last": the row j or k opens once the next page has loaded
    filterCounts: {},
    pages: 1,
    total: 0,
    // The agent's and unclaimed tickets with unread visitor messages: id -> newest unread message id
    // (null until the first queue load, so what is already waiting then does not ring).
    attention: null,
    seenPosted: {}, // ticket id -> the message id this tab last said it showed
    searchTimer: null,
    pending: null, // {id, action, number, due, timer, ticker[, into, path, body]}: an action waiting out its undo time
    sendingPending: null, // the promise of a waiting action being sent (true once done)
    lastActionError: "", // why the last action failed, in words
    noteMode: false, // the composer writes an internal note instead of a reply
    noteDrafts: {}, // ticket id -> an unsent note
    replyHold: "", // the reply's text while the composer shows the note
    savedReplies: [], // [{id, title, text}]
    articleSearch: { q: "", hits: null, timer: null }, // the KB search's hits for the picker's words
  };

  // ------------------------------------------------------------- helpers --

  /** An element with a class, text (as text, never markup), attributes and children. */
  function el(tag, options, children) {
    var node = document.createElement(tag);
    var o = options || {};
    if (o.className) node.className = o.className;
    if (o.text !== undefined && o.text !== null) node.textContent = String(o.text);
    if (o.attrs) {
      Object.keys(o.attrs).forEach(function (name) {
        var value = o.attrs[name];
        if (value === null || value === undefined || value === false) return;
        node.setAttribute(name, value === true ? "" : String(value));
      });
    }
    (children || []).forEach(function (child) {
      if (child === null || child === undefined || child === false) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function str(value) {
    return value === null || value === undefined ? "" : String(value);
  }

  /** What the inbox calls a ticket's visitor: their stable label, else their name, else "Visitor". */
  function customerName(ticket) {
    return ticket.customer_label || ticket.customer_name || "Visitor";
  }

  function cap(value) {
    var s = str(value).replace(/_/g, " ");
    return s ? s.charAt(0).toUpperCase() + s.slice(1) : "";
  }

  function sameEmail(a, b) {
    return !!a && !!b && String(a).toLowerCase() === String(b).toLowerCase();
  }

  function isMine(ticket) {
    return !!ticket && sameEmail(ticket.assignee, ME.email);
  }

  function reasonText(reason) {
    if (!reason) return "Unknown reason";
    return Object.prototype.hasOwnProperty.call(REASONS, reason) ? REASONS[reason] : cap(reason);
  }

  function statusText(status) {
    return Object.prototype.hasOwnProperty.call(STATUSES, status) ? STATUSES[status] : cap(status);
  }

  function statusClass(status) {
    return Object.prototype.hasOwnProperty.call(STATUSES, status) ? "dm-status-" + status : "dm-status-other";
  }

  /** An ISO time from the server as milliseconds (the server keeps UTC; microseconds trimmed). */
  function parseTime(value) {
    if (typeof value !== "string" || !value.trim()) return NaN;
    var s = value.trim();
    if (/^\d{4}-\d{2}-\d{2}$/.test(s)) return Date.parse(s + "T00:00:00Z");
    s = s.replace(" ", "T").replace(/(\.\d{3})\d+/, "$1");
    if (!/(Z|[+-]\d{2}:?\d{2})$/i.test(s)) s += "Z";
    return Date.parse(s);
  }

  function nowMs() {
    return Date.now() + state.clockOffset;
  }

  var dateTimeFormat = new Intl.DateTimeFormat(undefined, {
    day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
  });
  var dateTimeYearFormat = new Intl.DateTimeFormat(undefined, {
    day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit",
  });
  var dateFormat = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric" });
  var timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

  function formatDateTime(iso) {
    var ms = parseTime(iso);
    if (isNaN(ms)) return "";
    var date = new Date(ms);
    return (date.getFullYear() === new Date().getFullYear() ? dateTimeFormat : dateTimeYearFormat).format(date);
  }

  function formatDate(iso) {
    var ms = parseTime(iso);
    return isNaN(ms) ? "" : dateFormat.format(new Date(ms));
  }

  /** A message's time: the clock time today, else the date too. */
  function formatMessageTime(iso) {
    var ms = parseTime(iso);
    if (isNaN(ms)) return "";
    var date = new Date(ms);
    return date.toDateString() === new Date().toDateString() ? timeFormat.format(date) : formatDateTime(iso);
  }

  function duration(ms) {
    var minutes = Math.floor(ms / 60000);
    if (minutes < 1) return "<1 min";
    if (minutes < 60) return minutes + " min";
    var hours = Math.floor(minutes / 60);
    if (hours < 48) return hours + " h" + (minutes % 60 ? " " + (minutes % 60) + " min" : "");
    return Math.floor(hours / 24) + " d";
  }

  /**
   * The first reply against its due time (the ticket JSON's `first_agent_reply_at`
   * and `sla_due_at`): once an agent has replied, when that was and whether it
   * was within the SLA ("first reply 14:02 (within SLA)" or "(3 min late)"); the
   * countdown ("due in 4 min", "overdue 2 min") only while no agent has replied.
   * `state` names the case for styling and tests: replied, late, waiting,
   * overdue, resolved.
   */
  function slaInfo(ticket) {
    if (!ticket) return { text: "", overdue: false, state: "" };
    var due = parseTime(ticket.sla_due_at);
    var replied = parseTime(ticket.first_agent_reply_at);
    var reply = null;
    if (!isNaN(replied)) {
      var late = !isNaN(due) && replied > due;
      var verdict = isNaN(due) ? "" : late ? " (" + duration(replied - due) + " late)" : " (within SLA)";
      reply = { text: "first reply " + formatMessageTime(ticket.first_agent_reply_at) + verdict, late: late };
    }
    if (ticket.status === "resolved") {
      var when = formatDateTime(ticket.resolved_at);
      var text = when ? "Resolved " + when : "Resolved";
      return { text: reply ? text + " \u00b7 " + reply.text : text, overdue: false, state: "resolved", done: true };
    }
    if (reply) return { text: reply.text, overdue: false, state: reply.late ? "late" : "replied", done: true };
    if (isNaN(due)) return { text: ticket.overdue ? "overdue" : "", overdue: !!ticket.overdue, state: "waiting" };
    var left = due - nowMs();
    if (left >= 0) return { text: "due in " + duration(left), overdue: false, state: "waiting" };
    return { text: "overdue " + duration(-left), overdue: true, state: "overdue" };
  }

  function percent(confidence) {
    var n = Number(confidence);
    if (!isFinite(n)) return "\u2013";
    var p = n * 100;
    return (p === 0 || p >= 9.95 ? String(Math.round(p)) : p.toFixed(1).replace(/\.0$/, "")) + "%";
  }

  function assigneeText(email) {
    if (!email) return "Unclaimed";
    if (sameEmail(email, ME.email)) return (ME.name || email) + " (you)";
    return String(email);
  }

  function articleTitle(id) {
    var article = state.articlesById[id];
    return article ? str(article.title) : "";
  }

  function showAlert(node, text) {
    node.textContent = text;
    node.hidden = false;
  }

  function hideAlert(node) {
    node.hidden = true;
    node.textContent = "";
  }

  function notice(text) {
    showAlert(ui.ticketNotice, text);
    if (state.noticeTimer) clearTimeout(state.noticeTimer);
    state.noticeTimer = setTimeout(function () {
      hideAlert(ui.ticketNotice);
    }, 5000);
  }

  /** Runs fn at most once at a time; calls made meanwhile run it once more afterwards. */
  function coalesce(fn) {
    var running = null;
    var again = false;
    return function run() {
      if (running) {
        again = true;
        return running;
      }
      running = (async function () {
        try {
          do {
            again = false;
            await fn();
          } while (again);
        } finally {
          running = null;
        }
      })();
      return running;
    };
  }

  // ----------------------------------------------------------------- API --

  function ApiError(message, status) {
    var error = new Error(message);
    error.status = status;
    return error;
  }

  function signedOut() {
    if (state.signingOut) return;
    state.signingOut = true;
    window.location.assign("/agent/login");
  }

  async function api(method, path, payload, signal) {
    var init = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (signal) init.signal = signal;
    if (method !== "GET") {
      init.headers["Content-Type"] = "application/json";
      init.headers["X-CSRF-Token"] = CSRF;
      init.body = JSON.stringify(payload || {});
    }
    var response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      if (error && error.name === "AbortError") throw error;
      throw ApiError("Deskmate can't be reached; check the connection.", 0);
    }
    if (response.status === 401) {
      signedOut();
      throw ApiError("Signed out.", 401);
    }
    var text = "";
    try {
      text = await response.text();
    } catch (error) {
      if (error && error.name === "AbortError") throw error;
    }
    var data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (error) {
      data = null;
    }
    if (!response.ok) {
      var message = data && typeof data.error === "string" ? data.error : "";
      if (!message && text && text.length < 300 && !/</.test(text)) message = text.trim();
      throw ApiError(message || "The server answered " + response.status + ".", response.status);
    }
    if (response.status === 204) return {}; // done, nothing to say (a deletion)
    if (!data || typeof data !== "object") throw ApiError("The server sent an unexpected answer.", response.status);
    return data;
  }

  // --------------------------------------------------------------- queue --

  var loadQueue = coalesce(async function () {
    try {
      var q = state.query;
      var params = "view=" + encodeURIComponent(q.view) + "&filter=" + encodeURIComponent(q.filter) +
        "&page=" + encodeURIComponent(q.page) + (q.q ? "&q=" + encodeURIComponent(q.q) : "");
      var data = await api("GET", "/agent/api/queue?" + params);
      // The contract may one day carry the server's clock (DESKMATE_FIXED_NOW demos): use it when present.
      var serverNow = parseTime(data.now);
      if (!isNaN(serverNow)) state.clockOffset = serverNow - Date.now();
      state.counts = data.counts && typeof data.counts === "object" ? data.counts : {};
      state.tickets = (Array.isArray(data.tickets) ? data.tickets : []).filter(function (t) {
        return t && t.id !== undefined && t.id !== null;
      });
      state.filterCounts = data.filter_counts && typeof data.filter_counts === "object" ? data.filter_counts : {};
      state.pages = Math.max(1, Number(data.pages) || 1);
      state.total = Number(data.total) || 0;
      if (state.query.page > state.pages) {
        // The page shrank under us (tickets resolved meanwhile): show the last one there is.
        state.query.page = state.pages;
        loadQueue();
      }
      hideAlert(ui.queueError);
      renderQueue();
      if (state.selectAfterLoad) {
        var rows = ui.queueList.querySelectorAll('[data-testid="queue-row"]');
        var row = rows.length ? rows[state.selectAfterLoad === "first" ? 0 : rows.length - 1] : null;
        state.selectAfterLoad = null;
        if (row) {
          selectTicket(row.getAttribute("data-ticket"));
          row.scrollIntoView({ block: "nearest" });
        }
      }
      takeAttention(Array.isArray(data.attention) ? data.attention : []);
    } catch (error) {
      if (error.status === 401) return;
      ui.queueLoading.hidden = true;
      showAlert(ui.queueError, "The queue could not be loaded: " + error.message);
    }
  });

  function count(value) {
    var n = Number(value);
    return isFinite(n) ? String(n) : "0";
  }

  function renderQueue() {
    var counts = state.counts || {};
    ui.countOpen.textContent = count(counts.open);
    ui.countAssigned.textContent = count(counts.assigned);
    ui.countResolved.textContent = count(counts.resolved);
    renderTitle();
    renderQueueControls();

    ui.queueLoading.hidden = true;
    ui.queueEmpty.hidden = state.tickets.length > 0;
    ui.queueEmpty.textContent = queueEmptyText();

    var active = document.activeElement;
    var focusedId = active && ui.queueList.contains(active) ? active.getAttribute("data-ticket") : null;
    var scroll = ui.queueList.scrollTop;
    var fragment = document.createDocumentFragment();
    state.tickets.forEach(function (ticket) {
      fragment.appendChild(queueRow(ticket));
    });
    clear(ui.queueList);
    ui.queueList.appendChild(fragment);
    ui.queueList.scrollTop = scroll;
    if (focusedId !== null) {
      var row = rowFor(focusedId);
      if (row) row.focus({ preventScroll: true });
    }
  }

  function queueEmptyText() {
    var q = state.query;
    if (q.q) return "No ticket matches \u201c" + q.q + "\u201d" + (q.filter !== "all" ? " with this filter." : ".");
    if (q.view === "resolved") return "No resolved tickets" + (q.filter !== "all" ? " with this filter." : " yet.");
    if (q.filter !== "all") return "No open tickets with this filter.";
    return "No open tickets. New ones appear here as they arrive.";
  }

  /** The tab's title: how many of my and unclaimed tickets have visitor messages I haven't read. */
  function renderTitle() {
    var unread = state.attention ? Object.keys(state.attention).length : 0;
    document.title = (unread > 0 ? "(" + unread + ") " : "") + TITLE;
  }

  function renderQueueControls() {
    var q = state.query;
    var views = document.querySelectorAll(".dm-view");
    for (var i = 0; i < views.length; i += 1) {
      views[i].setAttribute("aria-pressed", views[i].getAttribute("data-view") === q.view ? "true" : "false");
    }
    var filters = ui.filters.querySelectorAll("[data-filter]");
    for (var j = 0; j < filters.length; j += 1) {
      var name = filters[j].getAttribute("data-filter");
      filters[j].setAttribute("aria-pressed", name === q.filter ? "true" : "false");
      var countNode = filters[j].querySelector(".dm-filter-count");
      if (countNode) countNode.textContent = state.filterCounts[name] !== undefined ? count(state.filterCounts[name]) : "";
    }
    ui.queueList.setAttribute("aria-label", q.view === "resolved" ? "Resolved tickets" : "Open and assigned tickets");
    ui.pager.hidden = state.pages <= 1;
    ui.pageInfo.textContent = "Page " + q.page + " of " + state.pages + " \u00b7 " + state.total + " tickets";
    ui.pagePrev.disabled = q.page <= 1;
    ui.pageNext.disabled = q.page >= state.pages;
  }

  function setQuery(change) {
    Object.keys(change).forEach(function (key) {
      state.query[key] = change[key];
    });
    if (!("page" in change)) state.query.page = 1;
    renderQueueControls();
    ui.queueList.scrollTop = 0;
    loadQueue();
  }

  document.querySelectorAll(".dm-view").forEach(function (button) {
    button.addEventListener("click", function () {
      setQuery({ view: button.getAttribute("data-view") });
    });
  });
  ui.filters.addEventListener("click", function (event) {
    var button = event.target.closest("[data-filter]");
    if (button) setQuery({ filter: button.getAttribute("data-filter") });
  });
  ui.searchForm.addEventListener("submit", function (event) {
    event.preventDefault();
    if (state.searchTimer) clearTimeout(state.searchTimer);
    setQuery({ q: ui.searchInput.value.trim() });
  });
  ui.searchInput.addEventListener("input", function () {
    if (state.searchTimer) clearTimeout(state.searchTimer);
    state.searchTimer = setTimeout(function () {
      state.searchTimer = null;
      if (ui.searchInput.value.trim() !== state.query.q) setQuery({ q: ui.searchInput.value.trim() });
    }, 300);
  });
  ui.searchInput.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && ui.searchInput.value) {
      event.preventDefault();
      ui.searchInput.value = "";
      setQuery({ q: "" });
    }
  });
  ui.pagePrev.addEventListener("click", function () {
    if (state.query.page > 1) setQuery({ page: state.query.page - 1 });
  });
  ui.pageNext.addEventListener("click", function () {
    if (state.query.page < state.pages) setQuery({ page: state.query.page + 1 });
  });

  function rowFor(id) {
    var rows = ui.queueList.querySelectorAll('[data-testid="queue-row"]');
    for (var i = 0; i < rows.length; i += 1) {
      if (rows[i].getAttribute("data-ticket") === String(id)) return rows[i];
    }
    return null;
  }

  function queueRow(ticket) {
    var id = String(ticket.id);
    var high = ticket.priority === "high";
    var sla = slaInfo(ticket);
    var selected = state.selectedId === id;
    var classes = ["dm-row"];
    if (high) classes.push("dm-high");
    if (sla.overdue) classes.push("dm-overdue");
    if (selected) classes.push("dm-selected");
    if (isMine(ticket)) classes.push("dm-mine");
    var unread = Number(ticket.unread) || 0;
    if (unread > 0) classes.push("dm-unread");
    var latest = ticket.latest_message && typeof ticket.latest_message === "object" ? ticket.latest_message : null;
    var button = el("button", {
      className: classes.join(" "),
      attrs: {
        type: "button",
        "data-testid": "queue-row",
        "data-ticket": id,
        "data-status": str(ticket.status),
        "data-unread": String(unread),
        "aria-current": selected ? "true" : null,
      },
    }, [
      // Three compact lines, so a 800 px high screen shows eight rows or more: who and when; why and whose;
      // the latest word.
      el("span", { className: "dm-row-line dm-row-top" }, [
        el("span", { className: "dm-row-number", text: ticket.number || "#" + id }),
        unread > 0
          ? el("span", {
            className: "dm-unread-badge",
            text: unread > 99 ? "99+" : String(unread),
            attrs: { "data-testid": "queue-row-unread", title: unread + " unread visitor message" + (unread === 1 ? "" : "s") },
          })
          : null,
        high ? el("span", { className: "dm-badge dm-badge-priority", text: "Priority" }) : null,
        // Cut with an ellipsis in a narrow queue (1280 px beside a Priority badge): the whole label on hover.
        el("span", {
          className: "dm-row-customer",
          text: customerName(ticket),
          attrs: { title: customerName(ticket) },
        }),
        el("span", { className: "dm-row-sla", text: sla.text, attrs: { "data-sla": sla.state, "data-testid": "queue-row-sla" } }),
      ]),
      el("span", { className: "dm-row-line dm-row-meta" }, [
        el("span", { className: "dm-row-reason", text: reasonText(ticket.reason) }),
        ticket.plan ? el("span", { className: "dm-row-plan", text: cap(ticket.plan) }) : null,
        el("span", {
          className: "dm-row-assignee" + (ticket.assignee ? "" : " dm-unclaimed"),
          text: ticket.status === "resolved" ? "Resolved " + formatDateTime(ticket.resolved_at) + (ticket.assignee ? " \u00b7 " + assigneeText(ticket.assignee) : "") : assigneeText(ticket.assignee),
          attrs: { "data-assignee": ticket.assignee || "" },
        }),
      ]),
      latest
        ? el("span", { className: "dm-row-latest", attrs: { "data-testid": "queue-row-latest", "data-from": str(latest.from) } }, [
          el("span", { className: "dm-row-latest-who", text: latestWho(latest) }),
          el("span", { className: "dm-row-latest-text", text: str(latest.text) }),
        ])
        : null,
    ]);
    return el("li", { className: "dm-queue-item" }, [button]);
  }

  function latestWho(latest) {
    if (latest.from !== "agent") return "Visitor: ";
    return sameEmail(latest.author, ME.email) ? "You: " : "Agent: ";
  }

  function markSelectedRow() {
    var rows = ui.queueList.querySelectorAll('[data-testid="queue-row"]');
    for (var i = 0; i < rows.length; i += 1) {
      var selected = rows[i].getAttribute("data-ticket") === state.selectedId;
      rows[i].classList.toggle("dm-selected", selected);
      if (selected) rows[i].setAttribute("aria-current", "true");
      else rows[i].removeAttribute("aria-current");
    }
  }

  /** Every 30 s: the time left on each row and on the open ticket. */
  function updateTimes() {
    var byId = {};
    state.tickets.forEach(function (t) {
      byId[String(t.id)] = t;
    });
    var rows = ui.queueList.querySelectorAll('[data-testid="queue-row"]');
    for (var i = 0; i < rows.length; i += 1) {
      var ticket = byId[rows[i].getAttribute("data-ticket")];
      if (!ticket) continue;
      var sla = slaInfo(ticket);
      rows[i].classList.toggle("dm-overdue", sla.overdue);
      var label = rows[i].querySelector("[data-sla]");
      if (label) {
        label.textContent = sla.text;
        label.setAttribute("data-sla", sla.state);
      }
    }
    if (state.detail && state.detail.ticket) renderSla(state.detail.ticket);
  }

  ui.queueList.addEventListener("click", function (event) {
    var row = event.target.closest('[data-testid="queue-row"]');
    if (row) selectTicket(row.getAttribute("data-ticket"));
  });

  ui.queueList.addEventListener("keydown", function (event) {
    var row = event.target.closest('[data-testid="queue-row"]');
    if (!row) return;
    var rows = Array.prototype.slice.call(ui.queueList.querySelectorAll('[data-testid="queue-row"]'));
    var index = rows.indexOf(row);
    var next = null;
    if (event.key === "ArrowDown") next = rows[Math.min(index + 1, rows.length - 1)];
    else if (event.key === "ArrowUp") next = rows[Math.max(index - 1, 0)];
    else if (event.key === "Home") next = rows[0];
    else if (event.key === "End") next = rows[rows.length - 1];
    if (next) {
      event.preventDefault();
      next.focus();
    }
  });

  // -------------------------------------------------------------- ticket --

  function showPlaceholder(title, text) {
    ui.view.hidden = true;
    ui.placeholder.hidden = false;
    ui.placeholderTitle.textContent = title;
    ui.placeholderText.textContent = text;
  }

  function saveDraft() {
    if (state.selectedId) {
      if (ui.replyText.value) state.drafts[state.selectedId] = ui.replyText.value;
      else delete state.drafts[state.selectedId];
    }
  }

  function selectTicket(id, options) {
    if (id === null || id === undefined || id === "") return;
    id = String(id);
    var opts = options || {};
    if (state.selectedId === id) {
      loadTicket();
      return;
    }
    setNoteMode(false, true); // the reply's text back in the box before it is kept as the draft
    saveDraft();
    if (state.ticketAbort) state.ticketAbort.abort();
    state.selectedId = id;
    state.detail = null;
    state.messagesKey = null;
    ui.replyText.value = state.drafts[id] || "";
    closePicker();
    hideAlert(ui.ticketError);
    hideAlert(ui.ticketNotice);
    if (!opts.fromHash && window.location.hash !== "#ticket-" + id) {
      window.history.replaceState(null, "", "#ticket-" + id);
    }
    markSelectedRow();
    var known = state.tickets.filter(function (t) {
      return String(t.id) === id;
    })[0];
    showPlaceholder("Loading " + (known && known.number ? known.number : "ticket") + "\u2026", "");
    loadTicket();
  }

  var loadTicket = coalesce(async function () {
    var id = state.selectedId;
    if (!id) return;
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    state.ticketAbort = controller;
    try {
      var data = await api("GET", "/agent/api/tickets/" + encodeURIComponent(id), null, controller && controller.signal);
      if (state.selectedId !== id) return;
      if (!data.ticket || typeof data.ticket !== "object") throw ApiError("The ticket came without its details.", 200);
      state.detail = data;
      hideAlert(ui.ticketError);
      renderTicket();
    } catch (error) {
      if ((error && error.name === "AbortError") || error.status === 401 || state.selectedId !== id) return;
      if (state.detail) showAlert(ui.ticketError, "This ticket could not be refreshed: " + error.message);
      else if (error.status === 404) showPlaceholder("Ticket not found", error.message);
      else showPlaceholder("The ticket could not be loaded", error.message);
    } finally {
      if (state.ticketAbort === controller) state.ticketAbort = null;
    }
  });

  function renderTicket() {
    var detail = state.detail;
    if (!detail) return;
    var ticket = detail.ticket;
    var handover = detail.handover && typeof detail.handover === "object" ? detail.handover : {};
    ui.placeholder.hidden = true;
    ui.view.hidden = false;
    renderHead(ticket);
    renderCustomer(ticket, handover, Array.isArray(detail.earlier_tickets) ? detail.earlier_tickets : []);
    renderOnline(detail.visitor_online);
    renderOthers(ticket, Array.isArray(detail.other_open_tickets) ? detail.other_open_tickets : []);
    renderEmail(ticket, Array.isArray(detail.emails) ? detail.emails : []);
    renderWhy(ticket, handover);
    renderMessages(Array.isArray(detail.messages) ? detail.messages : [], Array.isArray(detail.notes) ? detail.notes : []);
    renderReplyState();
    markSeen();
  }

  function renderSla(ticket) {
    var sla = slaInfo(ticket);
    ui.sla.textContent = sla.done ? cap(sla.text) : "First reply " + sla.text;
    ui.sla.setAttribute("data-sla", sla.state);
    ui.sla.classList.toggle("dm-overdue-text", sla.overdue);
  }

  function renderHead(ticket) {
    var id = String(ticket.id);
    ui.number.textContent = ticket.number || "#" + id;
    ui.status.textContent = statusText(ticket.status);
    ui.status.className = "dm-badge " + statusClass(ticket.status);
    ui.priority.hidden = ticket.priority !== "high";
    ui.assignee.textContent = assigneeText(ticket.assignee);
    ui.assignee.setAttribute("data-assignee", ticket.assignee || "");
    ui.assignee.classList.toggle("dm-unclaimed", !ticket.assignee);
    renderSla(ticket);
    var opened = formatDateTime(ticket.created_at);
    ui.opened.textContent = opened ? "Opened " + opened : "";
    renderActions();
  }

  function renderActions() {
    var ticket = state.detail && state.detail.ticket;
    if (!ticket) return;
    var resolved = ticket.status === "resolved";
    var mine = isMine(ticket);
    ui.claim.hidden = mine || resolved;
    ui.resolve.hidden = resolved;
    ui.handback.hidden = resolved;
    ui.reopen.hidden = !resolved;
    ui.reopen.disabled = state.busy;
    ui.claim.disabled = resolved || state.busy;
    ui.claim.textContent = ticket.assignee && !mine ? "Take over" : "Claim";
    if (ticket.assignee && !mine) ui.claim.title = "Assigned to " + ticket.assignee + "; claiming takes it over";
    else ui.claim.removeAttribute("title");
    var waiting = !!(state.pending && state.pending.id === String(ticket.id));
    ui.claim.disabled = ui.claim.disabled || waiting;
    ui.resolve.disabled = resolved || state.busy || waiting;
    ui.handback.disabled = resolved || state.busy || waiting;
  }

  function fact(list, term, value) {
    if (value === null || value === undefined || value === "") return;
    list.appendChild(el("dt", { text: term }));
    list.appendChild(el("dd", { text: value }));
  }

  // Where replies go when the visitor has left the chat, and how the newest e-mail fared.
  function emailState(mail) {
    var tries = mail.attempts === 1 ? "1 try" : str(mail.attempts) + " tries";
    if (mail.status === "sent") return { text: "E-mailed " + formatDateTime(mail.sent_at), failed: false };
    if (mail.status === "cancelled") return { text: "Not needed: the visitor saw the reply in the chat", failed: false };
    if (mail.status === "failed") return { text: "Not delivered after " + tries + ": " + str(mail.last_error), failed: true };
    if (mail.status === "sending") return { text: "Sending\u2026", failed: false };
    var due = formatDateTime(mail.next_attempt_at);
    if (mail.attempts > 0) return { text: "Failed (" + tries + "): " + str(mail.last_error) + "; trying again " + due, failed: true };
    return { text: "Goes out " + due + " unless the visitor sees the reply in the chat first", failed: false };
  }

  function renderEmail(ticket, emails) {
    fact(ui.customer, "Replies by e-mail", ticket.contact_email ? str(ticket.contact_email) : "No address (chat only)");
    if (!emails.length) return;
    var state = emailState(emails[0]);
    ui.customer.appendChild(el("dt", { text: "Last e-mail" }));
    ui.customer.appendChild(el("dd", {
      className: state.failed ? "dm-overdue-text" : "",
      attrs: { "data-testid": "email-delivery", "data-status": str(emails[0].status) },
      text: state.text,
    }));
  }

  /** Why a visitor counts as anonymous (the handover's ``identity``), in words an agent can act on. */
  function signedInWords(identity) {
    if (!identity || identity === "no token") return "No (not signed in on the website)";
    if (identity === "verified") return "Yes, but not as a customer we have on file";
    if (identity === "token expired") return "No (their website sign-in had expired)";
    return "No (the website's sign-in could not be checked)";
  }

  function renderCustomer(ticket, handover, earlier) {
    var customer = handover.customer && typeof handover.customer === "object" ? handover.customer : { anonymous: true };
    clear(ui.customer);
    if (customer.anonymous) {
      fact(ui.customer, "Name", customerName(ticket));
      fact(ui.customer, "Signed in", signedInWords(str(handover.identity)));
      fact(ui.customer, "Plan", ticket.plan ? cap(ticket.plan) : "");
    } else {
      fact(ui.customer, "Name", str(customer.name) || ticket.customer_name || "");
      fact(ui.customer, "Signed in", "Yes");
      fact(ui.customer, "E-mail", str(customer.email));
      fact(ui.customer, "Plan", cap(customer.plan || ticket.plan));
      fact(ui.customer, "Status", cap(customer.status));
      fact(ui.customer, "Billing", cap(customer.billing_period));
      fact(ui.customer, "Renews", formatDate(customer.renews_at));
      fact(ui.customer, "Trial ends", formatDate(customer.trial_ends_at));
    }

    clear(ui.earlier);
    if (!earlier.length) {
      ui.earlier.appendChild(el("li", {
        className: "dm-muted",
        text: customer.anonymous ? "Unknown for an anonymous visitor." : "None.",
      }));
      return;
    }
    earlier.forEach(function (item) {
      var parts = [statusText(item.status), reasonText(item.reason), formatDate(item.created_at)].filter(Boolean);
      ui.earlier.appendChild(el("li", null, [
        el("button", {
          className: "dm-link",
          attrs: { type: "button", "data-ticket": str(item.id), "data-testid": "earlier-ticket" },
        }, [
          el("span", { className: "dm-earlier-number", text: item.number || "#" + str(item.id) }),
          " ",
          el("span", { className: "dm-muted", text: parts.join(" \u00b7 ") }),
        ]),
      ]));
    });
  }

  /** Whether the visitor's chat is open now (true / false / null: unknown with several gateways). */
  function renderOnline(online) {
    var text = online === true ? "Online now" : online === false ? "Not online" : "Unknown";
    var why = online === true ? "The visitor's chat is open now"
      : online === false ? "No chat of this conversation is open" : "The chat may be open on another gateway";
    ui.customer.appendChild(el("dt", { text: "Online" }));
    ui.customer.appendChild(el("dd", { attrs: { "data-testid": "visitor-online", "data-online": String(online), title: why } }, [
      el("span", { className: "dm-online-dot", attrs: { "data-online": String(online), "aria-hidden": "true" } }),
      " " + text,
    ]));
  }

  function renderOthers(ticket, others) {
    clear(ui.others);
    ui.othersBox.hidden = !others.length;
    others.forEach(function (other) {
      var latest = other.latest_message && typeof other.latest_message === "object" ? other.latest_message : null;
      ui.others.appendChild(el("li", { className: "dm-other", attrs: { "data-ticket": str(other.id) } }, [
        el("button", {
          className: "dm-link",
          attrs: { type: "button", "data-ticket": str(other.id), "data-testid": "other-ticket" },
        }, [
          el("span", { className: "dm-earlier-number", text: other.number || "#" + str(other.id) }),
          " ",
          el("span", { className: "dm-muted", text: [statusText(other.status), assigneeText(other.assignee)].join(" \u00b7 ") }),
          Number(other.unread) > 0
            ? el("span", {
              className: "dm-unread-badge",
              text: Number(other.unread) > 99 ? "99+" : String(Number(other.unread)),
              attrs: { "data-testid": "other-ticket-unread", title: other.unread + " unread visitor message" + (Number(other.unread) === 1 ? "" : "s") },
            })
            : null,
        ]),
        latest ? el("p", { className: "dm-small dm-muted dm-other-latest", text: "\u201c" + str(latest.text) + "\u201d" }) : null,
        ticket.status !== "resolved"
          ? el("button", {
            className: "dm-button dm-button-quiet dm-merge",
            text: "Merge into " + (ticket.number || "this ticket"),
            attrs: { type: "button", "data-merge": str(other.id), "data-testid": "merge-ticket",
              title: "Close " + str(other.number) + " and continue its request here (its messages are quoted in a note)" },
          })
          : null,
      ]));
    });
  }

  ui.others.addEventListener("click", function (event) {
    var merge = event.target.closest("[data-merge]");
    if (!merge) {
      var open = event.target.closest("button[data-ticket]");
      if (open) selectTicket(open.getAttribute("data-ticket"));
      return;
    }
    var ticket = state.detail && state.detail.ticket;
    var from = merge.getAttribute("data-merge");
    var other = ((state.detail && state.detail.other_open_tickets) || []).filter(function (t) {
      return t && String(t.id) === from;
    })[0];
    if (!ticket || !other) return;
    var into = ticket.number || "#" + str(ticket.id);
    var fromNumber = other.number || "#" + from;
    var confirm = false;
    if (other.assignee && !isMine(other)) {
      // A colleague's ticket: merging closes it under them. Ask, naming what will happen.
      confirm = window.confirm(
        fromNumber + " is claimed by " + other.assignee + ".\n\nMerging closes " + fromNumber +
        " (it is taken from " + other.assignee + "), tells its visitor the request continues in " + into +
        ", and quotes what they wrote there in a note on " + into + ".\n\nMerge anyway?"
      );
      if (!confirm) {
        notice("Not merged: " + fromNumber + " stays with " + other.assignee + ".");
        return;
      }
    }
    // Like resolving: a few seconds with an Undo before anything is sent.
    startPending({
      id: String(ticket.id), action: "merge", number: fromNumber, into: into,
      path: "/agent/api/tickets/" + encodeURIComponent(String(ticket.id)) + "/merge",
      body: { from: Number(from), confirm: confirm },
    });
  });

  async function mergeNow(pending) {
    hideAlert(ui.ticketError);
    var done = null;
    try {
      await api("POST", pending.path, pending.body);
      if (state.selectedId === pending.id) notice(pending.number + " merged into " + pending.into + ".");
      done = true;
    } catch (error) {
      state.lastActionError = "Merging failed: " + error.message;
      if (error.status !== 401 && state.selectedId === pending.id) showAlert(ui.ticketError, state.lastActionError);
      done = false;
    } finally {
      loadQueue();
      if (state.selectedId === pending.id) loadTicket();
    }
    return done;
  }

  ui.earlier.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-ticket]");
    if (button) selectTicket(button.getAttribute("data-ticket"));
  });

  // How sure the bot was of a guess, in words (its confidence 0..1): high from 0.7, medium from 0.4.
  function sureness(confidence) {
    var c = Number(confidence);
    if (!isFinite(c)) return "unknown";
    return c >= 0.7 ? "high" : c >= 0.4 ? "medium" : "low";
  }

  // What the bot took a message for, in plain words (its intent names are the model's, not the agent's).
  var INTENT_WORDS = {
    greet: "a greeting",
    goodbye: "a goodbye",
    affirm: "a yes",
    deny: "a no",
    thank: "thanks",
    request_human: "asking for a person",
    out_of_scope: "something outside what the bot covers",
    bot_challenge: "asking whether this is a bot",
    check_ticket_status: "asking about their ticket",
    check_subscription: "asking about their plan",
    feedback_helpful: "saying an answer helped",
    feedback_not_helpful: "saying an answer did not help",
  };

  function intentWords(name) {
    var n = str(name);
    return Object.prototype.hasOwnProperty.call(INTENT_WORDS, n) ? INTENT_WORDS[n] : cap(n).toLowerCase();
  }

  /** An article by its title (its id only as a hint), for people: never an id alone. */
  function articleLabel(id) {
    var title = articleTitle(id);
    return el("span", { className: "dm-article-label", attrs: { title: str(id) } }, [title || cap(str(id).replace(/-/g, " "))]);
  }

  function triedList(articles) {
    var list = el("ul", { className: "dm-tried", attrs: { "aria-label": "Articles the bot tried" } });
    articles.slice(0, 3).forEach(function (guess) {
      var sure = sureness(guess && guess.confidence);
      list.appendChild(el("li", { attrs: { "data-testid": "tried-article" } }, [
        articleLabel(guess && guess.article_id),
        el("span", { className: "dm-sure", text: "sure: " + sure, attrs: { "data-sure": sure } }),
      ]));
    });
    return list;
  }

  function renderWhy(ticket, handover) {
    // The server's words say what happened (how many messages the bot was unsure of); the code as a fallback.
    ui.whyReason.textContent = typeof handover.summary === "string" && handover.summary
      ? handover.summary : reasonText(handover.reason || ticket.reason);
    clear(ui.whyFailed);
    var failed = Array.isArray(handover.failed_messages) ? handover.failed_messages : [];
    if (!failed.length) {
      ui.whyFailed.appendChild(el("p", { className: "dm-muted dm-small", text: "Every message before the handover was answered." }));
    }
    failed.forEach(function (message) {
      var item = message || {};
      var articles = Array.isArray(item.articles) ? item.articles : [];
      var intents = Array.isArray(item.intents) ? item.intents : [];
      var top = intents[0] || null;
      var readAs = top && str(top.name) !== "faq" && sureness(top.confidence) !== "low"
        ? el("p", { className: "dm-small", text: "The bot took it for " + intentWords(top.name) + " (sure: " + sureness(top.confidence) + ")." })
        : null;
      ui.whyFailed.appendChild(el("div", { className: "dm-failed", attrs: { "data-testid": "handover-failed" } }, [
        el("blockquote", { className: "dm-failed-text", text: str(item.text) || "(empty message)" }),
        readAs,
        articles.length
          ? el("p", { className: "dm-guess-label", text: "Articles the bot tried" })
          : el("p", { className: "dm-small dm-muted", text: "No article came close." }),
        articles.length ? triedList(articles) : null,
      ]));
    });
    clear(ui.whyShown);
    var shown = Array.isArray(handover.articles_shown) ? handover.articles_shown : [];
    if (!shown.length) ui.whyShown.appendChild(el("li", { className: "dm-muted", text: "None." }));
    shown.forEach(function (id) {
      ui.whyShown.appendChild(el("li", { attrs: { "data-testid": "shown-article" } }, [articleLabel(id)]));
    });
  }

  function deskmatePayload(message) {
    var metadata = message && message.metadata;
    var payload = metadata && typeof metadata === "object" ? metadata.deskmate : null;
    return payload && typeof payload === "object" ? payload : {};
  }

  function senderLabel(message, payload) {
    var from = str(message.from);
    if (from === "agent") {
      var name = str(payload.agent_name) || str(message.author) || "Agent";
      return sameEmail(message.author, ME.email) ? name + " (you)" : name;
    }
    var label = Object.prototype.hasOwnProperty.call(SENDERS, from) ? SENDERS[from] : cap(from) || "Unknown";
    return payload.type === "email" ? label + " (by e-mail)" : label;
  }

  /** The conversation with the internal notes between its messages, by time (a note after a message of the
   * same moment). */
  function withNotes(messages, notes) {
    var items = messages.filter(function (m) {
      return m && typeof m === "object";
    }).map(function (m) {
      return { at: parseTime(m.at), message: m };
    });
    notes.forEach(function (n) {
      if (n && typeof n === "object") items.push({ at: parseTime(n.at), note: n });
    });
    return items.map(function (item, index) {
      item.index = index;
      return item;
    }).sort(function (a, b) {
      var x = isNaN(a.at) ? 0 : a.at;
      var y = isNaN(b.at) ? 0 : b.at;
      return x - y || a.index - b.index;
    });
  }

  function noteItem(note) {
    var time = formatMessageTime(note.at);
    var author = sameEmail(note.author, ME.email) ? str(note.author_name || note.author) + " (you)" : str(note.author_name || note.author);
    return el("li", {
      className: "dm-msg dm-msg-note",
      attrs: { "data-testid": "ticket-note", "data-note": str(note.id) },
    }, [
      el("div", { className: "dm-msg-head" }, [
        el("span", { className: "dm-note-tag", text: "Internal note" }),
        el("span", { className: "dm-msg-author", text: author }),
        el("span", { className: "dm-small dm-muted", text: "Staff only: the visitor never sees this" }),
        time ? el("time", { className: "dm-msg-time", text: time, attrs: { datetime: str(note.at) } }) : null,
      ]),
      el("div", { className: "dm-msg-text", text: str(note.text) }),
    ]);
  }

  function renderMessages(messages, notes) {
    var list = messages;
    notes = notes || [];
    var key = [state.selectedId, list.length, notes.length, state.articles ? "a" : "-"]
      .concat(list.map(function (m) {
        return str(m && m.id);
      }))
      .concat(notes.map(function (n) {
        return "n" + str(n && n.id);
      }))
      .join("|");
    if (key === state.messagesKey) return;
    var firstRender = state.messagesKey === null;
    state.messagesKey = key;

    var box = ui.conversation;
    var nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 60;

    var fragment = document.createDocumentFragment();
    withNotes(list, notes).forEach(function (item) {
      fragment.appendChild(item.note ? noteItem(item.note) : messageItem(item.message));
    });
    if (!list.length) fragment.appendChild(el("li", { className: "dm-muted dm-messages-empty", text: "No messages yet." }));
    clear(ui.messages);
    ui.messages.appendChild(fragment);
    if (firstRender || nearBottom) box.scrollTop = box.scrollHeight;
  }

  function messageItem(message) {
    var from = str(message.from);
    var kind = Object.prototype.hasOwnProperty.call(SENDERS, from) ? from : "other";
    var payload = deskmatePayload(message);
    var text = str(message.text);
    var articleIds = Array.isArray(payload.article_ids) ? payload.article_ids : [];
    var replies = Array.isArray(message.quick_replies) ? message.quick_replies : [];
    var time = formatMessageTime(message.at);
    return el("li", {
      className: "dm-msg dm-msg-" + kind + (sameEmail(message.author, ME.email) ? " dm-msg-mine" : ""),
      attrs: { "data-testid": "ticket-message", "data-from": from, "data-message": str(message.id) },
    }, [
      el("div", { className: "dm-msg-head" }, [
        el("span", { className: "dm-msg-author", text: senderLabel(message, payload) }),
        time ? el("time", { className: "dm-msg-time", text: time, attrs: { datetime: str(message.at) } }) : null,
      ]),
      text
        ? el("div", { className: "dm-msg-text", text: text })
        : el("div", { className: "dm-msg-text dm-muted", text: payload.type ? "(" + cap(payload.type) + ")" : "(no text)" }),
      payload.article_id
        ? el("p", { className: "dm-msg-article" }, [
          "Article ",
          el("code", { text: str(payload.article_id), attrs: { "data-article": str(payload.article_id) } }),
          articleTitle(payload.article_id) ? " \u00b7 " + articleTitle(payload.article_id) : null,
        ])
        : null,
      articleIds.length
        ? el("p", { className: "dm-msg-article" }, ["Suggested "].concat(articleIds.map(function (id, i) {
          return el("span", null, [i ? ", " : null, el("code", { text: str(id) })]);
        })))
        : null,
      replies.length
        ? el("ul", { className: "dm-msg-chips", attrs: { "aria-label": "Buttons offered" } }, replies.map(function (reply) {
          return el("li", { className: "dm-chip", text: str(reply && reply.title) });
        }))
        : null,
    ]);
  }

  // ------------------------------------------------------------- actions --

  var ACTION_DONE = { claim: "claimed", resolve: "resolved", handback: "handed back to the bot", reopen: "reopened" };
  var ACTION_NAME = { claim: "Claiming", resolve: "Resolving", handback: "Handing back", reopen: "Reopening" };

  function ticketNumber(id) {
    var known = state.tickets.filter(function (t) {
      return String(t.id) === String(id);
    })[0];
    return (known && known.number) || "#" + id;
  }

  /** Carry out ``action`` on ticket ``forId`` (else the open one); true once done, false if refused or failed. */
  async function act(action, forId, body) {
    var id = forId || state.selectedId;
    // A waiting action (forId) goes even while another is under way: it must never be dropped.
    if (!id || (state.busy && !forId) || (!forId && !state.detail)) return false;
    var done = false;
    state.busy = true;
    renderActions();
    hideAlert(ui.ticketError);
    try {
      var data = await api("POST", "/agent/api/tickets/" + encodeURIComponent(id) + "/" + action, body || {});
      done = true;
      if (state.selectedId === id && state.detail && data.ticket && typeof data.ticket === "object") {
        state.detail.ticket = Object.assign({}, state.detail.ticket, data.ticket);
        state.busy = false;
        renderTicket();
        notice((state.detail.ticket.number || "Ticket") + " " + ACTION_DONE[action] + ".");
        if (action === "claim") ui.replyText.focus();
        else ui.heading.focus();
      }
    } catch (error) {
      state.lastActionError = ACTION_NAME[action] + " " + (ticketNumber(id)) + " failed: " + error.message;
      if (error.status !== 401 && state.selectedId === id) showAlert(ui.ticketError, state.lastActionError);
    } finally {
      state.busy = false;
      renderActions();
      loadQueue();
      if (state.selectedId === id) loadTicket();
    }
    return done;
  }

  // ---------------------------------------------------------------- undo --

  // Resolving, handing back, taking a ticket over from a colleague and merging wait this long before
  // they are sent, with an Undo; nothing reaches the visitor or the colleague until then. A waiting
  // action is never dropped: signing out sends it first (and signs out only once it is done), and
  // leaving or closing the page sends it at once (fetch keepalive, which outlives the page).
  var UNDO_MS = 5000;
  var PENDING_TEXT = { resolve: "Resolving", handback: "Handing back", claim: "Taking over", merge: "Merging" };

  function pendingLabel(pending) {
    return PENDING_TEXT[pending.action] + " " + pending.number + (pending.into ? " into " + pending.into : "");
  }

  function pendingPath(pending) {
    return pending.path || "/agent/api/tickets/" + encodeURIComponent(pending.id) + "/" + pending.action;
  }

  function renderPending() {
    var pending = state.pending;
    ui.pending.hidden = !pending;
    if (!pending) return;
    var left = Math.max(0, Math.ceil((pending.due - Date.now()) / 1000));
    ui.pendingText.textContent = pendingLabel(pending) + " in " + left + " s\u2026";
  }

  function stopPending() {
    var pending = state.pending;
    if (!pending) return null;
    clearTimeout(pending.timer);
    clearInterval(pending.ticker);
    state.pending = null;
    renderPending();
    renderActions();
    return pending;
  }

  /** Send the waiting action now; resolves to true once it is done (false: refused or failed, and shown). */
  function commitPending() {
    var pending = stopPending();
    if (!pending) return Promise.resolve(true);
    var sent = pending.action === "merge" ? mergeNow(pending) : act(pending.action, pending.id, pending.body);
    state.sendingPending = sent;
    return sent.then(function (done) {
      if (state.sendingPending === sent) state.sendingPending = null;
      return done;
    });
  }

  function undoPending() {
    var pending = stopPending();
    if (pending) notice(pendingLabel(pending) + " undone: nothing was sent.");
  }

  function startPending(pending) {
    commitPending(); // one waiting action at a time: an earlier one goes now
    pending.due = Date.now() + UNDO_MS;
    pending.timer = setTimeout(commitPending, UNDO_MS);
    pending.ticker = setInterval(renderPending, 500);
    state.pending = pending;
    renderPending();
    renderActions();
    ui.undo.focus();
  }

  /** Resolve, hand back or take over after UNDO_MS unless undone; a claim of a free ticket goes at once. */
  function actWithUndo(action) {
    var ticket = state.detail && state.detail.ticket;
    if (!ticket || state.busy || ticket.status === "resolved") return;
    var takeOver = action === "claim" && ticket.assignee && !isMine(ticket);
    if (action === "claim" && (!takeOver)) {
      if (!isMine(ticket)) act("claim");
      return;
    }
    var id = String(ticket.id);
    var pending = { id: id, action: action, number: ticket.number || "#" + id };
    // Resolve and hand back name whose ticket the agent saw: if a colleague takes it during the undo
    // time, the server refuses (409) instead of closing it under them.
    if (action !== "claim") pending.body = { assignee: ticket.assignee || null };
    startPending(pending);
  }

  ui.undo.addEventListener("click", undoPending);

  /** The page is going away: a waiting action is sent now, with keepalive so it outlives the page. */
  function sendPendingOnLeave() {
    var pending = stopPending();
    if (!pending) return;
    try {
      fetch(pendingPath(pending), {
        method: "POST", credentials: "same-origin", keepalive: true,
        headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF, Accept: "application/json" },
        body: JSON.stringify(pending.body || {}),
      });
    } catch (error) {
      /* the page is going away */
    }
  }
  // beforeunload comes before the browser asks for the next page (so the action reaches the server while
  // the session still holds); pagehide is the fallback where beforeunload never fires (closing on a phone).
  window.addEventListener("beforeunload", sendPendingOnLeave);
  window.addEventListener("pagehide", sendPendingOnLeave);

  // Signing out with an action waiting (or on its way): it is carried out first, and the sign-out goes
  // only once it is done; if it fails, the agent stays signed in and sees why.
  var signOut = document.querySelector("form.dm-signout");
  if (signOut) {
    signOut.addEventListener("submit", async function (event) {
      if (!state.pending && !state.sendingPending) return;
      event.preventDefault();
      var button = signOut.querySelector("button");
      if (button) button.disabled = true;
      var done = state.pending ? await commitPending() : await state.sendingPending;
      if (done) {
        signOut.submit();
        return;
      }
      if (button) button.disabled = false;
      // Said once, however often the agent tries (the failure's own words first).
      showAlert(ui.ticketError, (state.lastActionError ? state.lastActionError + " " : "") +
        "You are still signed in: sign out again to leave anyway.");
    });
  }

  ui.claim.addEventListener("click", function () {
    actWithUndo("claim");
  });
  ui.resolve.addEventListener("click", function () {
    actWithUndo("resolve");
  });
  ui.handback.addEventListener("click", function () {
    actWithUndo("handback");
  });

  // ----------------------------------------------------------- shortcuts --

  function typing(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    return tag === "textarea" || tag === "select" || target.isContentEditable ||
      (tag === "input" && !/^(button|checkbox|radio|submit|reset)$/i.test(target.type || ""));
  }

  function toggleHelp(open) {
    if (!ui.help) return;
    var show = open === undefined ? !ui.help.open : open;
    if (show && !ui.help.open) ui.help.showModal();
    else if (!show && ui.help.open) ui.help.close();
  }

  /** The next (step 1) or previous (-1) ticket of the queue page shown, from the open one. */
  function stepTicket(step) {
    var rows = Array.prototype.slice.call(ui.queueList.querySelectorAll('[data-testid="queue-row"]'));
    if (!rows.length) return;
    var ids = rows.map(function (r) {
      return r.getAttribute("data-ticket");
    });
    var at = ids.indexOf(state.selectedId);
    // Past the page's last (or before its first) ticket: on to the next (previous) page, whose first (last)
    // ticket opens once it has loaded.
    if (at === ids.length - 1 && step > 0 && state.query.page < state.pages) {
      state.selectAfterLoad = "first";
      setQuery({ page: state.query.page + 1 });
      return;
    }
    if (at === 0 && step < 0 && state.query.page > 1) {
      state.selectAfterLoad = "last";
      setQuery({ page: state.query.page - 1 });
      return;
    }
    var next = at < 0 ? (step > 0 ? 0 : ids.length - 1) : Math.min(ids.length - 1, Math.max(0, at + step));
    selectTicket(ids[next]);
    rows[next].scrollIntoView({ block: "nearest" });
  }

  ui.helpOpen.addEventListener("click", function () {
    toggleHelp(true);
  });
  ui.helpClose.addEventListener("click", function () {
    toggleHelp(false);
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    if (event.key === "Escape" && event.target === ui.replyText) {
      ui.replyText.blur();
      return;
    }
    if (typing(event.target)) return;
    var openDialog = document.querySelector("dialog[open]");
    if (openDialog && !(openDialog === ui.help && event.key === "?")) return;
    var key = event.key;
    var handled = true;
    if (key === "?") toggleHelp();
    else if (key === "j") stepTicket(1);
    else if (key === "k") stepTicket(-1);
    else if (key === "c") actWithUndo("claim");
    else if (key === "e") actWithUndo("resolve");
    else if (key === "u") undoPending();
    else if (key === "r" && state.detail) setNoteMode(false);
    else if (key === "n" && state.detail) setNoteMode(true);
    else if (key === "a" && state.detail && !ui.filter.disabled) ui.filter.focus();
    else if (key === "/") ui.searchInput.focus();
    else handled = false;
    if (handled) event.preventDefault();
  });
  ui.reopen.addEventListener("click", function () {
    act("reopen");
  });

  // --------------------------------------------------------------- reply --

  function renderReplyState() {
    var ticket = state.detail && state.detail.ticket;
    var note = state.noteMode;
    // Notes may be added to a resolved ticket too; replies only to an open one.
    var closed = !ticket || (ticket.status === "resolved" && !note);
    var length = ui.replyText.value.trim().length;
    ui.modeReply.setAttribute("aria-pressed", note ? "false" : "true");
    ui.modeNote.setAttribute("aria-pressed", note ? "true" : "false");
    ui.reply.classList.toggle("dm-note-mode", note);
    ui.replyLabel.textContent = note ? "Internal note (staff only)" : "Reply to the visitor";
    ui.replyText.disabled = closed;
    ui.filter.disabled = closed;
    ui.replyText.placeholder = note
      ? "Internal note: only staff see this, never the visitor\u2026"
      : closed ? "This ticket is resolved; reopen it to reply." : "Write a reply\u2026";
    ui.replySend.disabled = closed || state.sending || length === 0 || length > MAX_REPLY_CHARS;
    ui.replySend.textContent = state.sending ? (note ? "Adding\u2026" : "Sending\u2026") : note ? "Add note" : "Send";
    ui.replyText.setAttribute("aria-busy", state.sending ? "true" : "false");
    var owner = "";
    if (note) owner = "Only staff see notes.";
    else if (ticket && !closed) {
      if (!ticket.assignee) owner = "Sending claims this ticket.";
      else if (!isMine(ticket)) owner = ticket.assignee + " has this ticket: Take over first (it has an Undo), then send.";
    }
    ui.replyOwner.textContent = owner;
    var raw = ui.replyText.value.length;
    ui.replyCount.textContent = raw > MAX_REPLY_CHARS - 500 ? raw + " / " + MAX_REPLY_CHARS : "";
    ui.replyCount.classList.toggle("dm-overdue-text", raw > MAX_REPLY_CHARS);
  }

  async function addNote() {
    var id = state.selectedId;
    var text = ui.replyText.value.trim();
    if (!id || state.sending) return;
    if (!text) {
      ui.replyText.focus();
      return;
    }
    state.sending = true;
    renderReplyState();
    hideAlert(ui.ticketError);
    try {
      await api("POST", "/agent/api/tickets/" + encodeURIComponent(id) + "/notes", { text: text });
      delete state.noteDrafts[id];
      if (state.selectedId === id && state.noteMode && ui.replyText.value.trim() === text) ui.replyText.value = "";
      loadTicket();
    } catch (error) {
      if (error.status !== 401 && state.selectedId === id) {
        showAlert(ui.ticketError, "Your note was not added (" + error.message + "). Your text is kept.");
      }
    } finally {
      state.sending = false;
      renderReplyState();
    }
  }

  /** Switch the composer between reply and note. Each keeps its own text, so a note is never sent to the
   * visitor by switching back and pressing Send. */
  function setNoteMode(on, keepFocus) {
    on = !!on;
    if (on !== state.noteMode) {
      var id = state.selectedId || "";
      if (state.noteMode) {
        if (ui.replyText.value) state.noteDrafts[id] = ui.replyText.value;
        else delete state.noteDrafts[id];
        ui.replyText.value = state.replyHold;
      } else {
        state.replyHold = ui.replyText.value;
        ui.replyText.value = state.noteDrafts[id] || "";
      }
      state.noteMode = on;
    }
    renderReplyState();
    if (!keepFocus) ui.replyText.focus();
  }

  ui.modeReply.addEventListener("click", function () {
    setNoteMode(false);
  });
  ui.modeNote.addEventListener("click", function () {
    setNoteMode(true);
  });

  async function sendReply() {
    if (state.noteMode) return addNote();
    var id = state.selectedId;
    var ticket = state.detail && state.detail.ticket;
    if (!id || !ticket || state.sending || ticket.status === "resolved") return;
    var text = ui.replyText.value.trim();
    if (!text) {
      ui.replyText.focus();
      return;
    }
    if (text.length > MAX_REPLY_CHARS) {
      showAlert(ui.ticketError, "A reply is at most " + MAX_REPLY_CHARS + " characters; this one has " + text.length + ".");
      return;
    }
    if (ticket.assignee && !isMine(ticket)) {
      // Taking a colleague's ticket goes through Take over and its undo, never as a side effect of sending.
      showAlert(ui.ticketError, ticket.assignee + " has this ticket: press Take over first. Your text is kept.");
      return;
    }
    state.sending = true;
    renderReplyState();
    hideAlert(ui.ticketError);
    try {
      var data = await api("POST", "/agent/api/tickets/" + encodeURIComponent(id) + "/reply", { text: text });
      delete state.drafts[id];
      if (state.selectedId === id) {
        if (ui.replyText.value.trim() === text) ui.replyText.value = "";
        if (state.detail && data.ticket && typeof data.ticket === "object") {
          state.detail.ticket = Object.assign({}, state.detail.ticket, data.ticket);
          renderHead(state.detail.ticket);
        }
        // The first reply stops the countdown on the row too, before the queue comes back.
        state.tickets.forEach(function (t, i) {
          if (String(t.id) === id && data.ticket && typeof data.ticket === "object") {
            state.tickets[i] = Object.assign({}, t, data.ticket);
          }
        });
        updateTimes();
        ui.replyText.focus();
      }
      loadTicket();
      loadQueue();
    } catch (error) {
      if (error.status !== 401 && state.selectedId === id) {
        showAlert(ui.ticketError, "Your reply was not sent (" + error.message + "). Your text is kept.");
      }
    } finally {
      state.sending = false;
      renderReplyState();
    }
  }

  ui.reply.addEventListener("submit", function (event) {
    event.preventDefault();
    sendReply();
  });

  ui.replyText.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      sendReply();
    }
  });

  ui.replyText.addEventListener("input", function () {
    renderReplyState();
  });

  /** Put text at the caret (or over the selection), a blank line apart from what is around it. */
  function insertIntoReply(text) {
    var area = ui.replyText;
    var value = area.value;
    var start = typeof area.selectionStart === "number" ? area.selectionStart : value.length;
    var end = typeof area.selectionEnd === "number" ? area.selectionEnd : value.length;
    var before = value.slice(0, start);
    var after = value.slice(end);
    var insert = str(text).trim();
    if (before.trim()) {
      var trailing = /\n*$/.exec(before)[0].length;
      insert = (trailing >= 2 ? "" : trailing === 1 ? "\n" : "\n\n") + insert;
    }
    if (after.trim()) {
      insert += /^\n\n/.test(after) ? "" : /^\n/.test(after) ? "\n" : "\n\n";
    }
    area.value = before + insert + after;
    var caret = (before + insert).length;
    area.focus();
    area.setSelectionRange(caret, caret);
    area.dispatchEvent(new Event("input", { bubbles: true }));
  }

  // ------------------------------------------------------ article picker --

  var loadArticles = coalesce(async function () {
    state.articlesLoading = true;
    try {
      var data = await api("GET", "/agent/api/articles");
      var articles = (Array.isArray(data.articles) ? data.articles : []).filter(function (a) {
        return a && a.id !== undefined && a.id !== null;
      });
      articles.sort(function (a, b) {
        return str(a.title).localeCompare(str(b.title));
      });
      state.articles = articles;
      state.articlesById = {};
      articles.forEach(function (a) {
        state.articlesById[String(a.id)] = a;
      });
      state.articlesError = null;
      if (state.detail) {
        state.messagesKey = null;
        renderTicket(); // article titles next to ids
      }
    } catch (error) {
      if (error.status !== 401) state.articlesError = error.message;
    } finally {
      state.articlesLoading = false;
      if (state.picker.open) renderPicker();
    }
  });

  var loadSavedReplies = coalesce(async function () {
    try {
      var data = await api("GET", "/agent/api/saved-replies");
      state.savedReplies = (Array.isArray(data.saved_replies) ? data.saved_replies : []).filter(function (r) {
        return r && r.id !== undefined && r.id !== null;
      });
      if (state.picker.open) renderPicker();
      if (typeof renderSavedManager === "function") renderSavedManager();
    } catch (error) {
      /* the picker still offers articles */
    }
  });

  function wordsMatch(query, haystack) {
    var text = haystack.toLowerCase();
    return query.toLowerCase().split(/\s+/).filter(Boolean).every(function (word) {
      return text.indexOf(word) !== -1;
    });
  }

  /** The picker's options: saved replies whose title or text has every word, then the articles the bot's KB
   * search finds for the words (their answers and phrasings, best first), or, before it answers and with no
   * words, articles by title. Each option: {kind: "saved"|"article", id, title, text, detail}. */
  function pickerOptions(query) {
    var saved = state.savedReplies.filter(function (r) {
      return !query || wordsMatch(query, str(r.title) + " " + str(r.text));
    }).map(function (r) {
      return { kind: "saved", id: String(r.id), title: str(r.title), text: str(r.text), detail: "Saved reply" };
    });
    var articles;
    if (query && state.articleSearch.q === query && state.articleSearch.hits) {
      articles = state.articleSearch.hits;
    } else {
      articles = (state.articles || []).filter(function (a) {
        return !query || wordsMatch(query, str(a.title) + " " + str(a.id));
      });
    }
    return saved.concat(articles.map(function (a) {
      return { kind: "article", id: String(a.id), title: str(a.title) || str(a.id), text: str(a.body), detail: str(a.id) };
    }));
  }

  function searchArticles(query) {
    var search = state.articleSearch;
    if (search.timer) clearTimeout(search.timer);
    if (!query) return;
    search.timer = setTimeout(async function () {
      search.timer = null;
      try {
        var data = await api("GET", "/agent/api/articles?q=" + encodeURIComponent(query));
        if (ui.filter.value.trim() !== query) return; // typed on meanwhile
        search.q = query;
        search.hits = Array.isArray(data.articles) ? data.articles : [];
        state.picker.active = 0;
        if (state.picker.open) renderPicker();
      } catch (error) {
        /* the title filter stays */
      }
    }, 200);
  }

  function renderPicker() {
    var picker = state.picker;
    var list = ui.articleList;
    clear(list);
    ui.filter.removeAttribute("aria-activedescendant");
    var query = ui.filter.value.trim();
    if (!state.articles && !state.savedReplies.length) {
      picker.matches = [];
      var message = state.articlesError && !state.articlesLoading
        ? "Articles unavailable: " + state.articlesError
        : "Loading articles\u2026";
      list.appendChild(el("li", { className: "dm-picker-empty", text: message, attrs: { "aria-disabled": "true" } }));
      return;
    }
    picker.matches = pickerOptions(query);
    if (picker.active >= picker.matches.length) picker.active = picker.matches.length - 1;
    if (!picker.matches.length) {
      var searching = query && state.articleSearch.q !== query;
      list.appendChild(el("li", {
        className: "dm-picker-empty",
        text: searching ? "Searching\u2026" : query ? "Nothing matches \u201c" + query + "\u201d." : "No articles.",
        attrs: { "aria-disabled": "true" },
      }));
      return;
    }
    picker.matches.forEach(function (option, index) {
      var selected = index === picker.active;
      list.appendChild(el("li", {
        className: "dm-picker-option" + (selected ? " dm-active" : "") + (option.kind === "saved" ? " dm-picker-saved" : ""),
        attrs: {
          id: "dm-article-option-" + index,
          role: "option",
          "aria-selected": selected ? "true" : "false",
          "data-kind": option.kind,
          "data-article": option.kind === "article" ? option.id : null,
          "data-saved": option.kind === "saved" ? option.id : null,
          "data-index": String(index),
          "data-testid": option.kind === "saved" ? "insert-saved-option" : "insert-article-option",
        },
      }, [
        el("span", { className: "dm-picker-title", text: option.title }),
        el("span", { className: "dm-picker-id", text: option.detail }),
      ]));
    });
    if (picker.active >= 0) {
      ui.filter.setAttribute("aria-activedescendant", "dm-article-option-" + picker.active);
      var activeNode = $("dm-article-option-" + picker.active);
      if (activeNode && activeNode.scrollIntoView) activeNode.scrollIntoView({ block: "nearest" });
    }
  }

  function openPicker() {
    state.picker.open = true;
    ui.articleList.hidden = false;
    ui.filter.setAttribute("aria-expanded", "true");
    if (!state.articles && !state.articlesLoading) loadArticles();
    loadSavedReplies();
    renderPicker();
  }

  function closePicker() {
    state.picker.open = false;
    state.picker.active = -1;
    ui.articleList.hidden = true;
    ui.filter.setAttribute("aria-expanded", "false");
    ui.filter.removeAttribute("aria-activedescendant");
  }

  function chooseOption(index) {
    var option = state.picker.matches[index];
    if (!option) return;
    ui.filter.value = "";
    closePicker();
    insertIntoReply(option.text); // into the box, to edit before sending
  }

  ui.filter.addEventListener("focus", openPicker);
  ui.filter.addEventListener("click", function () {
    if (!state.picker.open) openPicker();
  });
  ui.filter.addEventListener("input", function () {
    state.picker.active = ui.filter.value.trim() ? 0 : -1;
    searchArticles(ui.filter.value.trim());
    if (!state.picker.open) openPicker();
    else renderPicker();
  });
  ui.filter.addEventListener("blur", closePicker);
  ui.filter.addEventListener("keydown", function (event) {
    var picker = state.picker;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!picker.open) openPicker();
      var n = picker.matches.length;
      if (!n) return;
      var step = event.key === "ArrowDown" ? 1 : -1;
      picker.active = picker.active < 0 ? (step > 0 ? 0 : n - 1) : (picker.active + step + n) % n;
      renderPicker();
    } else if (event.key === "Enter") {
      event.preventDefault(); // never submit the reply from here
      var index = picker.active >= 0 ? picker.active : (picker.matches.length === 1 ? 0 : -1);
      if (picker.open && index >= 0 && picker.matches[index]) chooseOption(index);
    } else if (event.key === "Escape") {
      if (picker.open) {
        event.preventDefault();
        closePicker();
      } else if (ui.filter.value) {
        ui.filter.value = "";
      }
    }
  });
  // Keep the focus in the filter while an option is clicked.
  ui.articleList.addEventListener("mousedown", function (event) {
    event.preventDefault();
  });
  ui.articleList.addEventListener("click", function (event) {
    var option = event.target.closest('[role="option"]');
    if (option) chooseOption(Number(option.getAttribute("data-index")));
  });

  // ---------------------------------------------------- unread and alerts --

  var SOUND_KEY = "deskmate.inbox.sound";
  var DESKTOP_KEY = "deskmate.inbox.desktop";
  var alerts = { sound: false, desktop: false, audio: null };

  function stored(key) {
    try {
      return window.localStorage.getItem(key) === "on";
    } catch (error) {
      return false; // storage blocked: alerts stay off
    }
  }

  function store(key, on) {
    try {
      if (on) window.localStorage.setItem(key, "on");
      else window.localStorage.removeItem(key);
    } catch (error) {
      /* storage blocked: the choice lasts for this page only */
    }
  }

  function desktopSupported() {
    return typeof window.Notification === "function";
  }

  function renderAlertToggles() {
    ui.soundToggle.setAttribute("aria-pressed", alerts.sound ? "true" : "false");
    ui.soundToggle.textContent = alerts.sound ? "Sound on" : "Sound off";
    var desktopOn = alerts.desktop && desktopSupported() && window.Notification.permission === "granted";
    ui.desktopToggle.setAttribute("aria-pressed", desktopOn ? "true" : "false");
    ui.desktopToggle.textContent = desktopOn ? "Desktop alerts on" : "Desktop alerts off";
    ui.desktopToggle.disabled = !desktopSupported();
    if (!desktopSupported()) ui.desktopToggle.title = "This browser has no desktop notifications";
  }

  /** A short two-note chime made by the browser (Web Audio): no sound file to load. */
  function chime() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!alerts.sound || !Context) return;
    try {
      if (!alerts.audio) alerts.audio = new Context();
      var audio = alerts.audio;
      if (audio.state === "suspended" && audio.resume) audio.resume();
      [880, 1320].forEach(function (frequency, i) {
        var start = audio.currentTime + i * 0.14;
        var tone = audio.createOscillator();
        var gain = audio.createGain();
        tone.type = "sine";
        tone.frequency.value = frequency;
        gain.gain.setValueAtTime(0.0001, start);
        gain.gain.exponentialRampToValueAtTime(0.2, start + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.25);
        tone.connect(gain);
        gain.connect(audio.destination);
        tone.start(start);
        tone.stop(start + 0.3);
      });
      document.body.setAttribute("data-last-chime", String(Date.now()));
    } catch (error) {
      /* no audio device: the title and the row still say it */
    }
  }

  function desktopAlert(item) {
    if (!alerts.desktop || !desktopSupported() || window.Notification.permission !== "granted") return;
    try {
      var note = new window.Notification(str(item.number) + ": the visitor wrote", {
        body: str(item.latest_text).slice(0, 140), // text only: notifications never render markup
        tag: "deskmate-ticket-" + str(item.id),
      });
      note.onclick = function () {
        window.focus();
        selectTicket(String(item.id));
        note.close();
      };
    } catch (error) {
      /* e.g. a browser that only notifies from a service worker */
    }
  }

  ui.soundToggle.addEventListener("click", function () {
    alerts.sound = !alerts.sound;
    store(SOUND_KEY, alerts.sound);
    renderAlertToggles();
    ui.alertsNote.textContent = alerts.sound ? "A chime plays when a visitor writes." : "";
    if (alerts.sound) chime(); // the click unlocks audio, and the agent hears what it sounds like
  });

  ui.desktopToggle.addEventListener("click", async function () {
    if (!desktopSupported()) return;
    if (alerts.desktop && window.Notification.permission === "granted") {
      alerts.desktop = false;
      store(DESKTOP_KEY, false);
      ui.alertsNote.textContent = "";
      renderAlertToggles();
      return;
    }
    var permission = window.Notification.permission;
    if (permission === "default") {
      try {
        permission = await window.Notification.requestPermission(); // asked only on this click
      } catch (error) {
        permission = window.Notification.permission;
      }
    }
    alerts.desktop = permission === "granted";
    store(DESKTOP_KEY, alerts.desktop);
    ui.alertsNote.textContent = permission === "denied"
      ? "Desktop alerts are blocked for this site: allow them in the browser's site settings."
      : alerts.desktop ? "Desktop alerts on." : "";
    renderAlertToggles();
  });

  /** The queue's ``attention`` list: the tab title's count, and a chime / desktop alert for each ticket
   * whose newest unread visitor message is new since the last look (not for the ticket on screen). */
  function takeAttention(items) {
    var previous = state.attention;
    var next = {};
    items.forEach(function (item) {
      if (item && item.id !== undefined && item.id !== null) next[String(item.id)] = Number(item.latest_id) || 0;
    });
    state.attention = next;
    renderTitle();
    if (previous === null) return;
    var onScreen = document.visibilityState === "visible" && document.hasFocus();
    var fresh = items.filter(function (item) {
      var id = String(item.id);
      if (previous[id] !== undefined && previous[id] >= next[id]) return false;
      return !(onScreen && id === state.selectedId);
    });
    if (!fresh.length) return;
    chime();
    fresh.forEach(desktopAlert);
  }

  /** Tell the server this agent has the open ticket's conversation in view, up to its newest message
   * (only while the page is visible and focused: a message that came in a background tab stays unread). */
  async function markSeen() {
    var detail = state.detail;
    var id = state.selectedId;
    if (!detail || !id || document.visibilityState !== "visible" || !document.hasFocus()) return;
    var messages = Array.isArray(detail.messages) ? detail.messages : [];
    var newest = messages.reduce(function (max, m) {
      var n = Number(m && m.id);
      return isFinite(n) && n > max ? n : max;
    }, 0);
    if (!newest || state.seenPosted[id] >= newest) return;
    state.seenPosted[id] = newest;
    try {
      await api("POST", "/agent/api/tickets/" + encodeURIComponent(id) + "/seen", { up_to: newest });
      if (state.attention && state.attention[id] !== undefined && state.attention[id] <= newest) {
        delete state.attention[id];
        renderTitle();
      }
      state.tickets.forEach(function (t) {
        if (String(t.id) === id) t.unread = 0;
      });
      var row = rowFor(id);
      if (row) {
        row.classList.remove("dm-unread");
        row.setAttribute("data-unread", "0");
        var badge = row.querySelector(".dm-unread-badge");
        if (badge) badge.parentNode.removeChild(badge);
      }
    } catch (error) {
      delete state.seenPosted[id]; // try again on the next look
    }
  }

  window.addEventListener("focus", markSeen);

  alerts.sound = stored(SOUND_KEY);
  alerts.desktop = stored(DESKTOP_KEY);
  renderAlertToggles();

  // ------------------------------------------- saved replies (leads only) --

  var saved = {
    dialog: $("dm-saved-dialog"),
    open: $("dm-saved-manage"),
    close: $("dm-saved-close"),
    list: $("dm-saved-list"),
    form: $("dm-saved-form"),
    formTitle: $("dm-saved-form-title"),
    name: $("dm-saved-form-name"),
    text: $("dm-saved-form-text"),
    error: $("dm-saved-error"),
    cancel: $("dm-saved-cancel"),
    editing: 0,
  };

  function editSaved(reply) {
    saved.editing = reply ? Number(reply.id) : 0;
    saved.formTitle.textContent = reply ? "Edit \u201c" + str(reply.title) + "\u201d" : "New saved reply";
    saved.name.value = reply ? str(reply.title) : "";
    saved.text.value = reply ? str(reply.text) : "";
    saved.cancel.hidden = !reply;
    hideAlert(saved.error);
    saved.name.focus();
  }

  function renderSavedManager() {
    if (!saved.list) return;
    clear(saved.list);
    if (!state.savedReplies.length) {
      saved.list.appendChild(el("li", { className: "dm-muted dm-small", text: "None yet." }));
    }
    state.savedReplies.forEach(function (reply) {
      saved.list.appendChild(el("li", { className: "dm-saved-item", attrs: { "data-testid": "saved-item", "data-saved": str(reply.id) } }, [
        el("div", { className: "dm-saved-body" }, [
          el("strong", { text: str(reply.title) }),
          el("p", { className: "dm-small dm-muted dm-saved-text", text: str(reply.text) }),
        ]),
        el("button", { className: "dm-button dm-button-quiet", text: "Edit", attrs: { type: "button", "data-edit": str(reply.id) } }),
        el("button", { className: "dm-button dm-button-quiet", text: "Delete", attrs: { type: "button", "data-delete": str(reply.id) } }),
      ]));
    });
  }

  if (saved.dialog && saved.open) {
    saved.open.addEventListener("click", function () {
      renderSavedManager();
      loadSavedReplies();
      editSaved(null);
      saved.dialog.showModal();
    });
    saved.close.addEventListener("click", function () {
      saved.dialog.close();
    });
    saved.cancel.addEventListener("click", function () {
      editSaved(null);
    });
    saved.list.addEventListener("click", async function (event) {
      var edit = event.target.closest("[data-edit]");
      var remove = event.target.closest("[data-delete]");
      var id = edit ? edit.getAttribute("data-edit") : remove ? remove.getAttribute("data-delete") : null;
      var reply = state.savedReplies.filter(function (r) {
        return String(r.id) === id;
      })[0];
      if (!reply) return;
      if (edit) {
        editSaved(reply);
        return;
      }
      if (!window.confirm("Delete the saved reply \u201c" + str(reply.title) + "\u201d?")) return;
      try {
        await api("DELETE", "/agent/api/saved-replies/" + encodeURIComponent(id));
      } catch (error) {
        if (error.status !== 401) showAlert(saved.error, "Not deleted: " + error.message);
      }
      loadSavedReplies();
    });
    saved.form.addEventListener("submit", async function (event) {
      event.preventDefault();
      hideAlert(saved.error);
      var body = { title: saved.name.value, text: saved.text.value };
      try {
        if (saved.editing) await api("PUT", "/agent/api/saved-replies/" + saved.editing, body);
        else await api("POST", "/agent/api/saved-replies", body);
        editSaved(null);
        loadSavedReplies();
      } catch (error) {
        if (error.status !== 401) showAlert(saved.error, "Not saved: " + error.message);
      }
    });
  }

  // ---------------------------------------------------------------- live --

  function setLive(stateName, text) {
    ui.live.setAttribute("data-state", stateName);
    ui.liveText.textContent = text;
  }

  function refreshAll() {
    loadQueue();
    if (state.selectedId) loadTicket();
    if (!state.articles) loadArticles();
  }

  function startPolling() {
    if (!state.pollTimer) state.pollTimer = setInterval(refreshAll, POLL_MS);
  }

  function stopPolling() {
    if (state.pollTimer) clearInterval(state.pollTimer);
    state.pollTimer = null;
  }

  function ticketIdOf(data) {
    return data && typeof data === "object" && data.ticket !== undefined && data.ticket !== null
      ? String(data.ticket && typeof data.ticket === "object" ? data.ticket.id : data.ticket)
      : null;
  }

  function connectLive() {
    if (typeof window.io !== "function") {
      setLive("offline", "Live updates unavailable; refreshing every 20 s");
      startPolling();
      return;
    }
    var socket = window.io("/agent", { path: "/socket.io", withCredentials: true });
    var retry = null;

    socket.on("connect", function () {
      setLive("live", "Live");
      stopPolling();
      refreshAll();
    });
    socket.on("disconnect", function (reason) {
      setLive("reconnecting", "Reconnecting\u2026");
      startPolling();
      // A disconnect by the server is not retried by the client itself.
      if (reason === "io server disconnect") {
        loadQueue(); // a signed-out session shows up as 401 here
        if (!retry) retry = setTimeout(function () {
          retry = null;
          socket.connect();
        }, 3000);
      }
    });
    socket.on("connect_error", function () {
      setLive("reconnecting", "Reconnecting\u2026");
      startPolling();
      loadQueue(); // refused because the session ended? The API says 401 and we go to sign-in.
      if (socket.active === false && !retry) {
        retry = setTimeout(function () {
          retry = null;
          socket.connect();
        }, 5000);
      }
    });
    socket.on("queue_changed", function (data) {
      loadQueue();
      var id = ticketIdOf(data);
      if (state.selectedId && (id === null || id === state.selectedId)) loadTicket();
    });
    // The open ticket's visitor came online or left (their last chat closed): the mark follows at once.
    socket.on("visitor_presence", function (data) {
      var id = ticketIdOf(data);
      if (id === null || id !== state.selectedId || !state.detail) return;
      var online = data.online === true ? true : data.online === false ? false : null;
      if (state.detail.visitor_online === online) return;
      state.detail.visitor_online = online;
      renderTicket();
    });
    socket.on("ticket_message", function (data) {
      var id = ticketIdOf(data);
      if (state.selectedId && id === state.selectedId) loadTicket();
      // An agent's first reply stops that row's countdown (first_agent_reply_at) and clears its overdue mark.
      if (id !== null && state.tickets.some(function (t) {
        return String(t.id) === id;
      })) loadQueue();
    });
  }

  // --------------------------------------------------------------- start --

  function ticketFromHash() {
    var match = /^#ticket-(\d+)$/.exec(window.location.hash || "");
    return match ? match[1] : null;
  }

  window.addEventListener("hashchange", function () {
    var id = ticketFromHash();
    if (id) selectTicket(id, { fromHash: true });
  });

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      updateTimes();
      markSeen();
    }
  });

  setInterval(function () {
    updateTimes();
    // Re-read the open ticket now and then (whether the visitor is online is pushed: this is the fallback).
    if (state.selectedId && !document.hidden) loadTicket();
  }, TICK_MS);
  loadQueue();
  loadArticles();
  loadSavedReplies();
  var initial = ticketFromHash();
  if (initial) selectTicket(initial, { fromHash: true });
  connectLive();
})();
