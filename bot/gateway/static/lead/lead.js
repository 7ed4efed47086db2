/* Deskmate lead console: the unanswered-questions inbox and retraining.
 *
 * Plain ES2018, no framework, no build. Every string from the server goes
 * into the page with textContent, value or setAttribute, never innerHTML:
 * visitors' messages are shown here as typed.
 */
(function () {
  "use strict";

  var SOURCES = {
    low_confidence: "bot unsure",
    not_helpful: "not helpful",
    handed_off: "handed off",
  };
  var ACTIONS = [
    { value: "article", label: "Add as a phrasing of article\u2026" },
    { value: "intent", label: "Add as an example of intent\u2026" },
    { value: "new_article", label: "Needs a new article" },
    { value: "dismiss", label: "Dismiss" },
  ];
  var STATUS_TEXT = {
    running: "Retraining\u2026",
    loaded: "The new model passed every check and now answers visitors.",
    refused: "The new model was refused; the previous model keeps answering.",
    failed: "Retraining failed; the previous model keeps answering.",
  };
  var POLL_MS = 2000;

  function $(id) {
    return document.getElementById(id);
  }

  var meta = document.querySelector('meta[name="csrf-token"]');
  var CSRF = meta ? meta.getAttribute("content") || "" : "";
  var RANGE = {
    since: document.body.getAttribute("data-since") || "",
    until: document.body.getAttribute("data-until") || "",
  };
  var choices = { articles: [], intents: [] };

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function request(method, url, body) {
    var options = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") {
      options.headers["X-CSRF-Token"] = CSRF;
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body || {});
    }
    return fetch(url, options).then(function (response) {
      return response
        .json()
        .catch(function () {
          return {};
        })
        .then(function (data) {
          if (!response.ok) {
            var error = new Error(data.error || "The server answered " + response.status + ".");
            error.status = response.status;
            throw error;
          }
          return data;
        });
    });
  }

  // --------------------------------------------------------------- inbox --

  function option(value, label, selected) {
    var node = el("option", "", label);
    node.value = value;
    if (selected) node.selected = true;
    return node;
  }

  function targetSelect(action, guesses) {
    var select = el("select");
    select.setAttribute("aria-label", action === "article" ? "Article" : "Intent");
    if (action === "article") {
      var best = guesses && guesses.length ? guesses[0] : "";
      choices.articles.forEach(function (a) {
        select.appendChild(option(a.id, a.title + " (" + a.id + ")", a.id === best));
      });
    } else {
      choices.intents.forEach(function (name) {
        select.appendChild(option(name, name, false));
      });
    }
    return select;
  }

  function decisionForm(message, row) {
    var form = el("form", "dm-decision");
    var text = el("input");
    text.type = "text";
    text.value = message.text;
    text.maxLength = 1000;
    text.setAttribute("aria-label", "Phrasing to add (edit out personal details)");
    var action = el("select");
    action.setAttribute("aria-label", "What to do with this message");
    // No close article: most likely a topic the knowledge base lacks.
    var initial = message.guesses.length ? "article" : "new_article";
    ACTIONS.forEach(function (a) {
      action.appendChild(option(a.value, a.label, a.value === initial));
    });
    var target = targetSelect("article", message.guesses);
    show(target, initial === "article");
    var apply = el("button", "dm-button", "Apply");
    apply.type = "submit";
    var status = el("span", "dm-small dm-muted");
    status.setAttribute("role", "status");

    action.addEventListener("change", function () {
      var replacement = action.value === "article" || action.value === "intent" ? targetSelect(action.value, message.guesses) : null;
      if (replacement) {
        form.replaceChild(replacement, target);
        target = replacement;
        show(target, true);
      } else {
        show(target, false);
      }
    });

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      apply.disabled = true;
      status.className = "dm-small dm-muted";
      status.textContent = "Saving\u2026";
      var body = { action: action.value, text: text.value };
      if (!target.hidden) body.target = target.value;
      request("POST", "/lead/api/misses/" + encodeURIComponent(message.id), body)
        .then(function (data) {
          row.classList.add("dm-miss-done");
          form.replaceWith(el("p", "dm-small dm-miss-done", data.summary || "Saved."));
          if (body.action === "new_article") loadNewArticles(data.new_articles);
        })
        .catch(function (error) {
          apply.disabled = false;
          status.className = "dm-small dm-check-failed";
          status.textContent = error.message;
        });
    });

    [text, action, target, apply, status].forEach(function (node) {
      form.appendChild(node);
    });
    return form;
  }

  function sourceText(sources) {
    return Object.keys(sources)
      .filter(function (key) {
        return sources[key];
      })
      .map(function (key) {
        return (SOURCES[key] || key) + " " + sources[key];
      })
      .join(" \u00b7 ");
  }

  function renderGroup(group, index) {
    var item = el("li", "dm-group");
    item.setAttribute("data-testid", "miss-group");
    var head = el("div", "dm-group-head");
    head.appendChild(el("span", "dm-group-count", group.count + (group.count === 1 ? " message" : " messages")));
    head.appendChild(el("span", "dm-small dm-muted", sourceText(group.sources)));
    item.appendChild(head);
    // What the group is about, readable while its messages are folded away.
    item.appendChild(el("p", "dm-group-examples", group.examples.map(function (text) {
      return "\u201c" + text + "\u201d";
    }).join("  \u00b7  ")));

    if (!group.guesses.length) {
      item.appendChild(el("p", "dm-small dm-muted", "No article comes close: probably a topic the knowledge base lacks."));
    } else {
      var guesses = el("div", "dm-group-guesses");
      guesses.appendChild(el("span", "dm-small dm-muted", "Bot's best guesses:"));
      group.guesses.forEach(function (guess) {
        var chip = el("span", "dm-chip", guess.title + (guess.score !== null && guess.score !== undefined ? " \u00b7 " + Math.round(guess.score * 100) + "%" : ""));
        chip.title = guess.article_id;
        guesses.appendChild(chip);
      });
      item.appendChild(guesses);
    }

    var details = el("details");
    if (index < 3) details.open = true;
    details.appendChild(el("summary", "dm-link", "Review the messages"));
    var list = el("ul", "dm-group-messages");
    group.messages.forEach(function (message) {
      var row = el("li", "dm-miss");
      row.setAttribute("data-testid", "miss");
      row.appendChild(el("p", "dm-miss-text", message.text));
      row.appendChild(el("p", "dm-small dm-muted", message.created_at.slice(0, 16).replace("T", " ") + " UTC \u00b7 " + message.sources.map(function (s) {
        return SOURCES[s] || s;
      }).join(", ")));
      row.appendChild(decisionForm(message, row));
      list.appendChild(row);
    });
    details.appendChild(list);
    item.appendChild(details);
    return item;
  }

  function loadNewArticles(items) {
    var list = $("dm-new-list");
    list.textContent = "";
    (items || []).forEach(function (item) {
      var row = el("li", "", item.text);
      row.appendChild(el("span", "dm-small dm-muted", " \u2014 " + item.decided_by + ", " + item.decided_at.slice(0, 10)));
      list.appendChild(row);
    });
    show($("dm-new-empty"), !(items || []).length);
  }

  function loadMisses() {
    var query = "?since=" + encodeURIComponent(RANGE.since) + "&until=" + encodeURIComponent(RANGE.until);
    request("GET", "/lead/api/misses" + query)
      .then(function (data) {
        choices.articles = data.articles;
        choices.intents = data.intents;
        var groups = $("dm-groups");
        groups.textContent = "";
        data.groups.forEach(function (group, index) {
          groups.appendChild(renderGroup(group, index));
        });
        show($("dm-misses-empty"), !data.groups.length);
        if (data.capped) {
          var note = $("dm-misses-error");
          note.className = "dm-alert dm-alert-info";
          note.textContent = "Showing the newest " + data.messages + " messages; decide these to see older ones.";
          show(note, true);
        }
        loadNewArticles(data.new_articles);
      })
      .catch(function (error) {
        var box = $("dm-misses-error");
        box.textContent = "Could not load the messages: " + error.message;
        show(box, true);
      })
      .finally(function () {
        show($("dm-misses-loading"), false);
      });
  }

  // ------------------------------------------------------------- retrain --

  var pollTimer = null;

  function renderJob(job) {
    var text = $("dm-retrain-text");
    var progress = $("dm-retrain-progress");
    var checks = $("dm-retrain-checks");
    var start = $("dm-retrain-start");
    checks.textContent = "";
    if (!job) {
      text.textContent = "No retraining yet. The bot answers with the model it started with.";
      show(progress, false);
      start.disabled = false;
      return;
    }
    var running = job.status === "running";
    var line = STATUS_TEXT[job.status] || job.status;
    if (running) line += " " + job.stage + " (" + job.progress + "%)";
    text.textContent = line;
    text.className = job.status === "refused" || job.status === "failed" ? "dm-check-failed" : running ? "" : "dm-check-passed";
    if (job.message) checks.appendChild(el("li", "dm-small", job.message));
    show(progress, running);
    progress.value = job.progress;
    job.checks.forEach(function (check) {
      var mark = { passed: "\u2713 ", failed: "\u2717 ", skipped: "\u2013 " }[check.status] || "";
      var row = el("li", "dm-check-" + check.status, mark + check.title + (check.reason ? ": " + check.reason : check.status === "skipped" ? ": not run" : ""));
      row.setAttribute("data-testid", "retrain-check");
      checks.appendChild(row);
    });
    var when = el("li", "dm-small dm-muted", "Started by " + job.requested_by + " at " + job.created_at.slice(0, 16).replace("T", " ") + " UTC");
    checks.appendChild(when);
    start.disabled = running;
    clearTimeout(pollTimer);
    if (running) pollTimer = setTimeout(loadJob, POLL_MS);
  }

  function loadJob() {
    request("GET", "/lead/api/retrain")
      .then(function (data) {
        show($("dm-retrain-error"), false);
        renderJob(data.job);
      })
      .catch(function (error) {
        var box = $("dm-retrain-error");
        box.textContent = "Could not read the retraining status: " + error.message;
        show(box, true);
        clearTimeout(pollTimer);
        pollTimer = setTimeout(loadJob, POLL_MS * 5);
      });
  }

  $("dm-retrain-start").addEventListener("click", function () {
    var start = $("dm-retrain-start");
    start.disabled = true;
    request("POST", "/lead/api/retrain", {})
      .then(function (data) {
        show($("dm-retrain-error"), false);
        renderJob(data.job);
      })
      .catch(function (error) {
        var box = $("dm-retrain-error");
        box.textContent = error.message;
        show(box, true);
        loadJob();
      });
  });

  loadMisses();
  loadJob();
})();
