// The console's one script: files go up with a progress bar
// (XMLHttpRequest reports upload progress; fetch does not). The catalog
// page ingests a file; the trace page traces a suspected leak and shows
// the result the server drew.
(function () {
  "use strict";

  function byId(id) {
    return document.getElementById(id);
  }

  // Sends `file` to `url`; `done(status, responseText)` when answered.
  function send(file, url, prefix, done) {
    var bar = byId(prefix + "-progress");
    var status = byId(prefix + "-status");
    var button = byId(prefix + "-start");
    function say(text, kind) {
      status.textContent = text;
      status.className = kind || "";
    }
    var xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("tracecast-console", prefix);
    xhr.setRequestHeader("content-type", "application/octet-stream");
    bar.hidden = false;
    bar.value = 0;
    button.disabled = true;
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) {
        bar.value = (100 * e.loaded) / e.total;
        say("Uploading… " + Math.round(bar.value) + "%");
      }
    };
    xhr.upload.onload = function () {
      bar.value = 100;
      say("Uploaded; the origin is working on it…");
    };
    xhr.onload = function () {
      button.disabled = false;
      done(xhr.status, xhr.responseText, say);
    };
    xhr.onerror = function () {
      button.disabled = false;
      say("The upload broke off; try again.", "error");
    };
    xhr.send(file);
  }

  function message(text) {
    try {
      return JSON.parse(text).message;
    } catch (err) {
      return text;
    }
  }

  var ingest = byId("ingest-form");
  if (ingest) {
    ingest.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var file = byId("ingest-file").files[0];
      if (!file) {
        return;
      }
      var q = new URLSearchParams({
        title: byId("ingest-title").value,
        price: byId("ingest-price").value,
        filename: file.name,
      });
      if (byId("ingest-ab").checked) {
        q.set("ab", "true");
      }
      send(file, "/console/contents?" + q.toString(), "ingest", function (status, text, say) {
        if (status === 201 || status === 200) {
          var body = JSON.parse(text);
          byId("ingest-status").dataset.content = body.id;
          say("Ingested as content #" + body.id + ": " + body.title, "done");
        } else {
          say("Refused: " + message(text), "error");
        }
      });
    });
  }

  var trace = byId("trace-form");
  if (trace) {
    trace.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var file = byId("trace-file").files[0];
      if (!file) {
        return;
      }
      var q = new URLSearchParams({ filename: file.name });
      var content = byId("trace-content").value.trim();
      if (content) {
        q.set("content", content);
      }
      byId("trace-result").textContent = "";
      send(file, "/console/trace?" + q.toString(), "trace", function (status, text, say) {
        if (status === 200) {
          say("Traced.", "done");
          // The server drew this fragment, escaped, from its own template.
          byId("trace-result").innerHTML = text;
        } else {
          say("Refused: " + message(text), "error");
        }
      });
    });
  }
})();
