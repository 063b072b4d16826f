// The citizens' pages: the large-text mode switch (remembered in this browser), and the
// assistant's chat over the public API. Without this script every form still works: the
// switch is a link-like GET form (?mode=elder) and the chat posts and renders on the server.
(function () {
  "use strict";
  var KEY = "hotline-elder";
  var root = document.documentElement;

  function store(on) {
    try { localStorage.setItem(KEY, on ? "1" : "0"); } catch (e) { /* private mode: this page only */ }
  }

  function setupMode() {
    var button = document.querySelector(".mode-toggle");
    // ?mode=elder in the address is remembered for the next pages.
    if (/[?&]mode=elder\b/.test(location.search)) store(true);
    if (!button) return;
    // Pressed, the switch says how to leave the mode (退出大字模式).
    function show(on) {
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.textContent = button.getAttribute(on ? "data-on" : "data-off");
    }
    show(root.classList.contains("elder"));
    button.addEventListener("click", function (event) {
      event.preventDefault();
      var on = !root.classList.contains("elder");
      root.classList.toggle("elder", on);
      show(on);
      store(on);
    });
  }

  // A JSON post to the public API: its status and its body, whatever the status.
  function postJson(url, payload) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload)
    }).then(function (response) {
      return response.json().then(function (body) { return { status: response.status, body: body }; });
    });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setupChat() {
    var ask = document.getElementById("ask");
    var log = document.getElementById("log");
    if (!ask || !log) return;
    var question = document.getElementById("question");
    var questionError = document.getElementById("question-error");
    var box = document.getElementById("handoff-box");
    var handoff = document.getElementById("handoff");
    var handoffError = document.getElementById("handoff-error");
    var phone = log.getAttribute("data-phone");
    // The conversation so far, as the server rendered it into the form.
    var turns = [];
    var roles = ask.querySelectorAll("input[name=role]");
    var texts = ask.querySelectorAll("input[name=text]");
    for (var i = 0; i < roles.length; i++) turns.push({ role: roles[i].value, text: texts[i].value });

    function turn(role, text) {
      var node = el("div", "turn " + role);
      node.appendChild(el("span", "who", role === "citizen" ? "您" : "客服"));
      node.appendChild(el("p", role === "assistant" ? "answer" : "", text));
      log.appendChild(node);
      return node;
    }

    function showError(target, field, message) {
      target.textContent = message;
      target.hidden = !message;
      if (field) {
        if (message) { field.setAttribute("aria-invalid", "true"); field.setAttribute("aria-describedby", target.id); }
        else field.removeAttribute("aria-invalid");
      }
    }

    ask.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = question.value.trim();
      if (!text) { showError(questionError, question, "请填写问题"); question.focus(); return; }
      var button = ask.querySelector("button[type=submit]");
      button.disabled = true;
      postJson("/public/v1/assistant", { question: text }).then(function (result) {
        if (result.status !== 200) {
          showError(questionError, question, result.body.zh || (result.status === 429 ? "提问太频繁，请稍后再试" : "暂时无法回答，请稍后再试或拨打" + phone));
          question.focus();
          return;
        }
        showError(questionError, question, "");
        var reply = result.body;
        turn("citizen", text);
        var node = turn("assistant", reply.answer);
        if (reply.articles.length) {
          var sources = el("div", "sources");
          sources.appendChild(el("p", "sources-title", reply.source === "model" ? "以上回答依据以下内容整理：" : "答案出处："));
          var list = el("ol");
          reply.articles.forEach(function (a) {
            var item = el("li");
            var link = el("a", "", a.title);
            link.href = a.url + (root.classList.contains("elder") ? "?mode=elder" : "");
            item.appendChild(link);
            list.appendChild(item);
          });
          sources.appendChild(list);
          node.appendChild(sources);
        }
        turns.push({ role: "citizen", text: text }, { role: "assistant", text: reply.answer });
        turns = turns.slice(-18);
        if (reply.handoff) {
          node.classList.add("handoff");
          var next = el("p", "next");
          var call = el("a", "btn", "拨打" + phone);
          call.href = "tel:" + phone;
          var file = el("a", "btn btn-ghost", "在线提交诉求");
          file.href = "#handoff-box";
          file.addEventListener("click", function () { box.open = true; document.getElementById("content").focus(); });
          next.appendChild(call); next.appendChild(document.createTextNode(" ")); next.appendChild(file);
          node.appendChild(next);
          box.open = true;
          document.getElementById("content").value = text;
        }
        question.value = "";
        question.focus();
      }).catch(function () {
        showError(questionError, question, "网络不通，请稍后再试或拨打" + phone);
      }).finally(function () { button.disabled = false; });
    });

    var codeSent = document.getElementById("code-sent");

    function fieldOf(name) {
      return name ? document.getElementById(name === "street" || name === "community" ? "place" : name) : null;
    }

    // 获取验证码: a code to the mobile number the matter will be filed under.
    function askCode(button) {
      var number = (handoff.elements.caller_phone.value || "").trim();
      button.disabled = true;
      postJson("/public/v1/assistant/handoff/code", { caller_phone: number }).then(function (result) {
        if (result.status !== 202) {
          var field = fieldOf(result.body.field);
          showError(handoffError, field, result.body.zh || "验证码发送失败，请稍后再试或拨打" + phone);
          if (field) field.focus();
          return;
        }
        showError(handoffError, null, "");
        var digits = number.replace(/\D/g, "").replace(/^86(?=1\d{10}$)/, "");
        codeSent.textContent = "验证码已发送至 " + digits.slice(0, 3) + "****" + digits.slice(-4) + "，" + result.body.minutes + "分钟内有效";
        codeSent.hidden = false;
        handoff.elements.code.focus();
      }).catch(function () {
        showError(handoffError, null, "网络不通，请稍后再试或拨打" + phone);
      }).finally(function () { button.disabled = false; });
    }

    // Its own click, not the submit event's submitter (which older Safari does not say).
    var getCode = document.getElementById("get-code");
    getCode.addEventListener("click", function (event) {
      event.preventDefault();
      askCode(getCode);
    });

    handoff.addEventListener("submit", function (event) {
      event.preventDefault();
      var form = new FormData(handoff);
      var place = (form.get("place") || "").split("/");
      var payload = {
        content: (form.get("content") || "").trim(),
        caller_phone: (form.get("caller_phone") || "").trim(),
        code: (form.get("code") || "").trim(),
        caller_name: (form.get("caller_name") || "").trim() || null,
        street: place[0] || null,
        community: place[1] || null,
        conversation: turns
      };
      var button = handoff.querySelector("button[type=submit][value=file]:not(.visually-hidden)");
      button.disabled = true;
      postJson("/public/v1/assistant/handoff", payload).then(function (result) {
        if (result.status !== 201) {
          var field = fieldOf(result.body.field);
          var message = result.body.zh || (result.status === 422 ? "请检查填写的内容" : "提交失败，请稍后再试或拨打" + phone);
          showError(handoffError, field, message);
          if (field) field.focus();
          return;
        }
        showError(handoffError, null, "");
        var node = el("div", "turn assistant filed");
        node.id = "filed";
        node.tabIndex = -1;
        node.setAttribute("role", "status");
        node.appendChild(el("span", "who", "客服"));
        var ok = el("p"); ok.appendChild(el("strong", "", "提交成功")); node.appendChild(ok);
        var number = el("p", "ticket-number", "工单编号：");
        number.appendChild(el("strong", "", result.body.number));
        node.appendChild(number);
        node.appendChild(el("p", "", result.body.message));
        log.appendChild(node);
        box.open = false;
        handoff.reset();
        codeSent.hidden = true;
        node.focus();
      }).catch(function () {
        showError(handoffError, null, "网络不通，请稍后再试或拨打" + phone);
      }).finally(function () { button.disabled = false; });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupMode();
    setupChat();
  });
})();
