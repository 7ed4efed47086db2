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
    handoff: "handed off",
    review: "marked wrong in a spot-check",
    refused: "refused as outside what the bot covers",
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

  // An article's title for display ("Cancel your subscription"), its id when kb/ no longer has it.
  function articleTitle(id) {
    for (var i = 0; i < choices.articles.length; i++) {
      if (choices.articles[i].id === id) return choices.articles[i].title;
    }
    return id;
  }

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
            error.problems = data.problems || null;
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

  // A choice of what to do, and of the article or intent it applies to.
  // Nothing is pre-selected unless the server proposes a confident article.
  function choiceControls(suggested) {
    var action = el("select");
    action.setAttribute("aria-label", "What to do with this message");
    action.setAttribute("data-testid", "decision-action");
    action.appendChild(option("", "Choose what to do\u2026", !suggested));
    ACTIONS.forEach(function (a) {
      action.appendChild(option(a.value, a.label, !!suggested && a.value === "article"));
    });
    var target = el("select");
    target.setAttribute("data-testid", "decision-target");

    function fillTarget() {
      target.textContent = "";
      if (action.value === "article") {
        target.setAttribute("aria-label", "Article");
        target.appendChild(option("", "Choose an article\u2026", !suggested));
        choices.articles.forEach(function (a) {
          target.appendChild(option(a.id, a.title + " (" + a.id + ")", a.id === suggested));
        });
      } else if (action.value === "intent") {
        target.setAttribute("aria-label", "Intent");
        target.appendChild(option("", "Choose an intent\u2026", true)); // never a default intent
        choices.intents.forEach(function (name) {
          target.appendChild(option(name, name, false));
        });
      }
      show(target, action.value === "article" || action.value === "intent");
    }
    fillTarget();
    return {
      action: action,
      target: target,
      refill: fillTarget,
      ready: function () {
        return !!action.value && (target.hidden || !!target.value);
      },
      body: function () {
        var body = { action: action.value };
        if (!target.hidden) body.target = target.value;
        return body;
      },
    };
  }

  function markDone(row, text, failed) {
    var form = row.querySelector("form.dm-decision");
    var note = el("p", "dm-small " + (failed ? "dm-check-failed" : "dm-miss-done"), text);
    note.setAttribute("data-testid", "miss-result");
    if (failed) {
      var old = row.querySelector('[data-testid="miss-result"]');
      if (old) old.remove();
      row.appendChild(note);
      return;
    }
    row.classList.add("dm-miss-done");
    row.setAttribute("data-decided", "true");
    var include = row.querySelector('[data-testid="miss-include"]');
    if (include) {
      include.checked = false;
      include.disabled = true;
      include.dispatchEvent(new Event("change"));
    }
    var old2 = row.querySelector('[data-testid="miss-result"]');
    if (old2) old2.remove();
    if (form) form.replaceWith(note);
    else row.appendChild(note);
  }

  function decisionForm(message, row) {
    var form = el("form", "dm-decision");
    var text = el("input");
    text.type = "text";
    text.value = message.text;
    text.maxLength = 1000;
    text.setAttribute("aria-label", "Phrasing to add (edit out personal details)");
    text.setAttribute("data-testid", "miss-text");
    var controls = choiceControls(message.suggested);
    var apply = el("button", "dm-button", "Apply");
    apply.type = "submit";
    var status = el("span", "dm-small dm-muted");
    status.setAttribute("role", "status");

    function update() {
      apply.disabled = !controls.ready();
    }
    controls.action.addEventListener("change", function () {
      controls.refill();
      update();
    });
    controls.target.addEventListener("change", update);
    update();

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!controls.ready()) return;
      apply.disabled = true;
      status.className = "dm-small dm-muted";
      status.textContent = "Saving\u2026";
      var body = controls.body();
      body.text = text.value;
      request("POST", "/lead/api/misses/" + encodeURIComponent(message.id), body)
        .then(function (data) {
          markDone(row, data.summary || "Saved.", false);
          if (body.action === "new_article") loadNewArticles(data.new_articles);
        })
        .catch(function (error) {
          update();
          status.className = "dm-small dm-check-failed";
          status.textContent = error.message;
        });
    });

    [text, controls.action, controls.target, apply, status].forEach(function (node) {
      form.appendChild(node);
    });
    return form;
  }

  // One decision for every checked message of a group; unchecked ones are the exceptions.
  function groupForm(group, rows) {
    var form = el("form", "dm-decision dm-group-decision");
    form.setAttribute("data-testid", "group-decision");
    form.appendChild(el("span", "dm-small", "Decide the group:"));
    var controls = choiceControls(group.suggested);
    var apply = el("button", "dm-button", "");
    apply.type = "submit";
    apply.setAttribute("data-testid", "group-apply");
    var status = el("span", "dm-small dm-muted");
    status.setAttribute("role", "status");

    function included() {
      return rows.filter(function (r) {
        var box = r.row.querySelector('[data-testid="miss-include"]');
        return box && box.checked && !r.row.getAttribute("data-decided");
      });
    }
    function update() {
      var count = included().length;
      apply.textContent = "Apply to " + count + (count === 1 ? " message" : " messages");
      apply.disabled = !count || !controls.ready();
    }
    controls.action.addEventListener("change", function () {
      controls.refill();
      update();
    });
    controls.target.addEventListener("change", update);
    rows.forEach(function (r) {
      r.row.querySelector('[data-testid="miss-include"]').addEventListener("change", update);
    });
    update();

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var chosen = included();
      if (!chosen.length || !controls.ready()) return;
      apply.disabled = true;
      status.className = "dm-small dm-muted";
      status.textContent = "Saving\u2026";
      var body = controls.body();
      body.messages = chosen.map(function (r) {
        var input = r.row.querySelector('[data-testid="miss-text"]');
        return { id: r.message.id, text: input ? input.value : r.message.text };
      });
      request("POST", "/lead/api/misses/decide", body)
        .then(function (data) {
          var byId = {};
          chosen.forEach(function (r) {
            byId[r.message.id] = r.row;
          });
          data.results.forEach(function (result) {
            var row = byId[result.message_id];
            if (row) markDone(row, result.ok ? result.summary || "Saved." : "Not saved: " + result.error, !result.ok);
          });
          status.className = "dm-small " + (data.refused ? "dm-check-failed" : "dm-muted");
          status.textContent = data.decided + " decided" + (data.refused ? ", " + data.refused + " not saved (see the messages)" : ".");
          if (body.action === "new_article") loadNewArticles(data.new_articles);
          update();
        })
        .catch(function (error) {
          update();
          status.className = "dm-small dm-check-failed";
          status.textContent = error.message;
        });
    });

    [controls.action, controls.target, apply, status].forEach(function (node) {
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

  // ------------------------------------------------------ conversation --

  var SENDERS = { visitor: "Visitor", bot: "Bot", agent: "Agent", system: "Deskmate" };

  function openConversation(messageId) {
    var dialog = $("dm-conversation");
    var list = $("dm-conversation-messages");
    var head = $("dm-conversation-title");
    list.textContent = "";
    head.textContent = "Loading the conversation\u2026";
    if (!dialog.open) dialog.showModal();
    request("GET", "/lead/api/messages/" + encodeURIComponent(messageId) + "/conversation")
      .then(function (data) {
        var tickets = data.tickets.map(function (t) {
          return "ticket #" + t.id + " (" + t.status + ")";
        });
        head.textContent = "Conversation " + data.conversation_id + (tickets.length ? " \u00b7 " + tickets.join(", ") : "");
        var highlighted = null;
        data.messages.forEach(function (m) {
          var item = el("li", "dm-conv-message dm-conv-" + m.sender);
          item.setAttribute("data-testid", "conversation-message");
          var who = m.sender === "agent" && m.author ? m.author : SENDERS[m.sender] || m.sender;
          var meta = who + " \u00b7 " + m.created_at.slice(0, 16).replace("T", " ") + " UTC";
          if (m.kind === "article" && m.article_id) meta += " \u00b7 article " + m.article_id;
          else if (m.kind) meta += " \u00b7 " + m.kind;
          item.appendChild(el("p", "dm-small dm-muted", meta));
          item.appendChild(el("p", "dm-conv-text", m.text));
          if (m.id === data.message_id) {
            item.classList.add("dm-conv-highlight");
            item.setAttribute("data-highlighted", "true");
            highlighted = item;
          }
          list.appendChild(item);
        });
        if (highlighted) highlighted.scrollIntoView({ block: "center" });
      })
      .catch(function (error) {
        head.textContent = "Could not load the conversation: " + error.message;
      });
  }

  $("dm-conversation-close").addEventListener("click", function () {
    $("dm-conversation").close();
  });

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
      item.appendChild(el("p", "dm-small dm-muted", "No article comes close."));
    } else {
      var guesses = el("div", "dm-group-guesses");
      guesses.appendChild(el("span", "dm-small dm-muted", "Closest articles:"));
      group.guesses.forEach(function (guess) {
        var chip = el("span", "dm-chip", guess.title + (guess.score !== null && guess.score !== undefined ? " \u00b7 " + Math.round(guess.score * 100) + "% alike" : " \u00b7 offered by the bot"));
        chip.title = guess.article_id;
        guesses.appendChild(chip);
      });
      item.appendChild(guesses);
    }

    var details = el("details");
    if (index < 3) details.open = true;
    details.appendChild(el("summary", "dm-link", "Review the messages"));
    var list = el("ul", "dm-group-messages");
    var rows = [];
    group.messages.forEach(function (message) {
      var row = el("li", "dm-miss");
      row.setAttribute("data-testid", "miss");
      row.setAttribute("data-message-id", String(message.id));
      var top = el("div", "dm-miss-top");
      var label = el("label", "dm-miss-include");
      var box = el("input");
      box.type = "checkbox";
      box.checked = true;
      box.setAttribute("data-testid", "miss-include");
      box.setAttribute("aria-label", "Include in the group's decision");
      label.appendChild(box);
      label.appendChild(el("span", "dm-miss-text", message.text));
      top.appendChild(label);
      var open = el("button", "dm-link dm-small", "Open the conversation");
      open.type = "button";
      open.setAttribute("data-testid", "miss-open-conversation");
      open.addEventListener("click", function () {
        openConversation(message.id);
      });
      top.appendChild(open);
      row.appendChild(top);
      var meta = message.created_at.slice(0, 16).replace("T", " ") + " UTC \u00b7 " + message.sources.map(function (s) {
        return SOURCES[s] || s;
      }).join(", ");
      if (message.rejected && message.rejected.length) {
        // The visitor's "No" or a lead's spot-check "Wrong": named by title, as the lead knows the articles.
        meta += " \u00b7 answered with, and judged wrong: " + message.rejected.map(articleTitle).join(", ");
      }
      row.appendChild(el("p", "dm-small dm-muted", meta));
      row.appendChild(decisionForm(message, row));
      list.appendChild(row);
      rows.push({ row: row, message: message });
    });
    if (group.messages.length > 1) details.appendChild(groupForm(group, rows));
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
        // Refused questions are their own list (most were rightly refused), never mixed into the misses.
        var refused = $("dm-refused-groups");
        var refusedGroups = data.refused_groups || [];
        refused.textContent = "";
        refusedGroups.forEach(function (group, index) {
          refused.appendChild(renderGroup(group, index));
        });
        // "Every question was answered" is only true when nothing was refused either.
        var empty = $("dm-misses-empty");
        empty.textContent = refusedGroups.length
          ? "Nothing to review here in this period; the questions the bot refused are below."
          : "Nothing to review in this period: every question was answered with confidence.";
        show(empty, !data.groups.length);
        show($("dm-refused-empty"), !refusedGroups.length);
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

  // ------------------------------------------------------------- reviews --

  function renderReviewSummary(data) {
    var counts = data.counts || { right: 0, wrong: 0 };
    var done = counts.right + counts.wrong;
    var text = "Reviewed in this period: " + counts.right + " right, " + counts.wrong + " wrong";
    if (done) text += " (" + Math.round((counts.right * 100) / done) + "% right)";
    text += "; " + data.pending + (data.pending === 1 ? " answer" : " answers") + " not reviewed yet.";
    $("dm-reviews-summary").textContent = text;
  }

  function renderReview(item) {
    var row = el("li", "dm-review");
    row.setAttribute("data-testid", "review");
    row.setAttribute("data-answer-id", String(item.answer_id));
    row.appendChild(el("p", "dm-miss-text", "\u201c" + item.question + "\u201d"));
    var answered = el("details", "dm-small");
    answered.appendChild(el("summary", "", "Answered with: " + (item.title || item.article_id) + " (" + item.article_id + ")"));
    if (item.answer) answered.appendChild(el("p", "dm-review-answer", item.answer));
    row.appendChild(answered);
    row.appendChild(el("p", "dm-small dm-muted", item.answered_at.slice(0, 16).replace("T", " ") + " UTC"));
    var actions = el("div", "dm-decision");
    var status = el("span", "dm-small dm-muted");
    status.setAttribute("role", "status");
    [["right", "Right"], ["wrong", "Wrong"]].forEach(function (pair) {
      var button = el("button", "dm-button", pair[1]);
      button.type = "button";
      button.setAttribute("data-testid", "review-" + pair[0]);
      button.addEventListener("click", function () {
        actions.querySelectorAll("button").forEach(function (b) {
          b.disabled = true;
        });
        request("POST", "/lead/api/reviews/" + encodeURIComponent(item.answer_id), { verdict: pair[0] })
          .then(function (data) {
            var note = el("p", "dm-small dm-miss-done", data.summary);
            note.setAttribute("data-testid", "review-result");
            actions.replaceWith(note);
            row.classList.add("dm-miss-done");
            if (pair[0] === "wrong") loadMisses();
            refreshReviewSummary();
          })
          .catch(function (error) {
            actions.querySelectorAll("button").forEach(function (b) {
              b.disabled = false;
            });
            status.className = "dm-small dm-check-failed";
            status.textContent = error.message;
          });
      });
      actions.appendChild(button);
    });
    var open = el("button", "dm-link dm-small", "Open the conversation");
    open.type = "button";
    open.addEventListener("click", function () {
      openConversation(item.question_id);
    });
    actions.appendChild(open);
    actions.appendChild(status);
    row.appendChild(actions);
    return row;
  }

  function reviewsQuery() {
    return "?since=" + encodeURIComponent(RANGE.since) + "&until=" + encodeURIComponent(RANGE.until);
  }

  function refreshReviewSummary() {
    request("GET", "/lead/api/reviews" + reviewsQuery()).then(renderReviewSummary).catch(function () {});
  }

  function loadReviews() {
    request("GET", "/lead/api/reviews" + reviewsQuery())
      .then(function (data) {
        var list = $("dm-reviews-list");
        list.textContent = "";
        data.items.forEach(function (item) {
          list.appendChild(renderReview(item));
        });
        show($("dm-reviews-empty"), !data.items.length);
        renderReviewSummary(data);
      })
      .catch(function (error) {
        var box = $("dm-reviews-error");
        box.textContent = "Could not load the answers to check: " + error.message;
        show(box, true);
      });
  }

  // ------------------------------------------------------------ articles --

  var editing = { version: null, articles: [], related: [] };

  function articleBody(preview) {
    var lines = function (id) {
      return $(id).value.split("\n").map(function (line) {
        return line.trim();
      }).filter(Boolean);
    };
    return {
      id: $("dm-article-id").value.trim(),
      category: $("dm-article-category").value.trim(),
      title: $("dm-article-title").value,
      questions: lines("dm-article-questions"),
      related: relatedInOrder(),
      problem: $("dm-article-problem").checked,
      body: $("dm-article-body").value,
      version: editing.version,
      preview: preview,
    };
  }

  // The article's own order first (its file changes only where the lead changed it), then new choices.
  function relatedInOrder() {
    var chosen = Array.prototype.filter.call($("dm-article-related").options, function (o) {
      return o.selected;
    }).map(function (o) {
      return o.value;
    });
    var kept = editing.related.filter(function (id) {
      return chosen.indexOf(id) >= 0;
    });
    return kept.concat(chosen.filter(function (id) {
      return kept.indexOf(id) < 0;
    }));
  }

  function updateArticleCounts() {
    var questions = $("dm-article-questions").value.split("\n").filter(function (l) {
      return l.trim();
    }).length;
    $("dm-article-question-count").textContent = "(" + questions + ")";
    $("dm-article-body-count").textContent = "(" + $("dm-article-body").value.trim().length + " of 800 characters)";
  }

  function fillRelated(selected, self) {
    var select = $("dm-article-related");
    select.textContent = "";
    editing.articles.forEach(function (a) {
      if (a.id !== self) select.appendChild(option(a.id, a.title + " (" + a.id + ")", selected.indexOf(a.id) >= 0));
    });
  }

  function fillArticle(article) {
    editing.version = article ? article.version : null;
    editing.related = article ? article.related.slice() : [];
    $("dm-article-id").value = article ? article.id : "";
    $("dm-article-category").value = article ? article.category : "";
    $("dm-article-id").readOnly = !!article;
    $("dm-article-category").readOnly = !!article;
    $("dm-article-title").value = article ? article.title : "";
    $("dm-article-questions").value = article ? article.questions.join("\n") : "";
    $("dm-article-body").value = article ? article.body : "";
    $("dm-article-problem").checked = !!(article && article.problem);
    fillRelated(article ? article.related : [], article ? article.id : "");
    $("dm-article-status").textContent = "";
    show($("dm-article-preview-pane"), false);
    updateArticleCounts();
  }

  function loadArticleList(selectId) {
    return request("GET", "/lead/api/articles").then(function (data) {
      editing.articles = data.articles;
      var pick = $("dm-article-pick");
      pick.textContent = "";
      pick.appendChild(option("", "New article\u2026", !selectId));
      data.articles.forEach(function (a) {
        pick.appendChild(option(a.id, a.title + " (" + a.id + ")", a.id === selectId));
      });
      var list = $("dm-article-categories");
      list.textContent = "";
      data.categories.forEach(function (c) {
        list.appendChild(option(c, c, false));
      });
      if (!selectId) fillRelated([], "");
    });
  }

  function showPreview(data, body) {
    $("dm-preview-body").textContent = body.body.trim();
    show($("dm-preview-person"), body.problem);
    var problems = $("dm-preview-problems");
    problems.textContent = "";
    (data.problems || []).forEach(function (p) {
      var item = el("li", "dm-check-failed", "\u2717 " + p);
      item.setAttribute("data-testid", "article-problem-line");
      problems.appendChild(item);
    });
    if (!data.problems) problems.appendChild(el("li", "dm-check-passed", "\u2713 " + data.summary));
    $("dm-preview-file").textContent = data.text || "";
    show($("dm-article-preview-pane"), true);
  }

  function submitArticle(preview) {
    var body = articleBody(preview);
    var status = $("dm-article-status");
    status.className = "dm-small dm-muted";
    status.textContent = preview ? "Checking\u2026" : "Saving\u2026";
    $("dm-article-save").disabled = true;
    request("POST", "/lead/api/articles", body)
      .then(function (data) {
        status.className = "dm-small " + (preview ? "dm-muted" : "dm-miss-done");
        status.textContent = data.summary;
        showPreview(data, body);
        if (!preview) {
          editing.version = data.version;
          $("dm-article-id").readOnly = true;
          $("dm-article-category").readOnly = true;
          loadArticleList(body.id);
        }
      })
      .catch(function (error) {
        status.className = "dm-small dm-check-failed";
        status.textContent = error.message;
        if (error.problems) showPreview({ problems: error.problems }, body);
      })
      .finally(function () {
        $("dm-article-save").disabled = false;
      });
  }

  $("dm-article-pick").addEventListener("change", function () {
    var id = $("dm-article-pick").value;
    if (!id) {
      fillArticle(null);
      return;
    }
    request("GET", "/lead/api/articles/" + encodeURIComponent(id))
      .then(function (data) {
        fillArticle(data.article);
      })
      .catch(function (error) {
        $("dm-article-status").textContent = error.message;
      });
  });
  $("dm-article-preview").addEventListener("click", function () {
    submitArticle(true);
  });
  $("dm-article-form").addEventListener("submit", function (event) {
    event.preventDefault();
    submitArticle(false);
  });
  ["dm-article-questions", "dm-article-body"].forEach(function (id) {
    $(id).addEventListener("input", updateArticleCounts);
  });

  // ------------------------------------------------------------- retrain --

  var pollTimer = null;

  function renderJob(job) {
    var text = $("dm-retrain-text");
    var progress = $("dm-retrain-progress");
    var checks = $("dm-retrain-checks");
    var start = $("dm-retrain-start");
    checks.textContent = "";
    if (!job) {
      show($("dm-retrain-comparison"), false);
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
    renderComparison(job);
    var when = el("li", "dm-small dm-muted", "Started by " + job.requested_by + " at " + job.created_at.slice(0, 16).replace("T", " ") + " UTC");
    checks.appendChild(when);
    start.disabled = running;
    clearTimeout(pollTimer);
    if (running) pollTimer = setTimeout(loadJob, POLL_MS);
  }

  function percent(value) {
    return value === null || value === undefined ? "\u2013" : (value * 100).toFixed(1) + "%";
  }

  // The candidate's figures beside the current model's and the floors; what failed, by how much, what to do.
  function renderComparison(job) {
    var box = $("dm-retrain-comparison");
    box.textContent = "";
    var rows = job.comparison || [];
    if (job.advice) {
      var advice = el("p", "dm-alert dm-alert-info", "What to do: " + job.advice);
      advice.setAttribute("data-testid", "retrain-advice");
      box.appendChild(advice);
    }
    if (!rows.length) {
      show(box, !!job.advice);
      return;
    }
    var table = el("table", "dm-table");
    table.setAttribute("data-testid", "retrain-figures");
    var head = el("tr");
    ["Dev eval figure", "Current model", "Candidate", "Floor", ""].forEach(function (title) {
      var th = el("th", "", title);
      th.scope = "col";
      head.appendChild(th);
    });
    var thead = el("thead");
    thead.appendChild(head);
    table.appendChild(thead);
    var body = el("tbody");
    rows.forEach(function (row) {
      var tr = el("tr", row.passed ? "" : "dm-row-failed");
      tr.setAttribute("data-testid", "retrain-figure");
      tr.setAttribute("data-figure", row.key);
      var name = el("th", "", row.label + (row.cases ? " (" + row.cases + " cases)" : ""));
      name.scope = "row";
      tr.appendChild(name);
      tr.appendChild(el("td", "", percent(row.current)));
      tr.appendChild(el("td", "", percent(row.candidate)));
      tr.appendChild(el("td", "", (row.sense === "max" ? "\u2264 " : "\u2265 ") + percent(row.bound)));
      var verdict = row.passed ? (row.note ? "passes: " + row.note : "\u2713") : "\u2717 " + row.reason;
      tr.appendChild(el("td", row.passed ? "dm-small" : "dm-small dm-check-failed", verdict));
      body.appendChild(tr);
    });
    table.appendChild(body);
    var caption = job.current_model ? "Current model: " + job.current_model + "; candidate: " + (job.candidate_model || "") + "." : "The current model's figures are not known (it was not checked by this version); the candidate's are beside the floors.";
    box.appendChild(el("p", "dm-small dm-muted", caption));
    var wrap = el("div", "dm-table-wrap");
    wrap.appendChild(table);
    box.appendChild(wrap);
    show(box, true);
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
  loadReviews();
  loadArticleList("").then(updateArticleCounts);
  loadJob();
})();
