// The catalog's upload: the file goes up with a progress bar
// (XMLHttpRequest reports upload progress; fetch does not), then the
// origin ingests it and the answer says which content it became.
(function () {
  "use strict";
  var form = document.getElementById("ingest-form");
  if (!form) {
    return;
  }
  var bar = document.getElementById("ingest-progress");
  var status = document.getElementById("ingest-status");
  function say(text, kind) {
    status.textContent = text;
    status.className = kind || "";
  }
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var file = document.getElementById("ingest-file").files[0];
    if (!file) {
      say("Choose a file first.", "error");
      return;
    }
    var q = new URLSearchParams({
      title: document.getElementById("ingest-title").value,
      price: document.getElementById("ingest-price").value,
      filename: file.name,
    });
    if (document.getElementById("ingest-ab").checked) {
      q.set("ab", "true");
    }
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/console/contents?" + q.toString());
    xhr.setRequestHeader("tracecast-console", "upload");
    xhr.setRequestHeader("content-type", "application/octet-stream");
    bar.hidden = false;
    bar.value = 0;
    document.getElementById("ingest-start").disabled = true;
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) {
        bar.value = (100 * e.loaded) / e.total;
        say("Uploading… " + Math.round(bar.value) + "%");
      }
    };
    xhr.upload.onload = function () {
      bar.value = 100;
      say("Uploaded; the origin is encoding the renditions…");
    };
    xhr.onload = function () {
      document.getElementById("ingest-start").disabled = false;
      var body;
      try {
        body = JSON.parse(xhr.responseText);
      } catch (err) {
        body = { message: xhr.responseText };
      }
      if (xhr.status === 201 || xhr.status === 200) {
        status.dataset.content = body.id;
        say("Ingested as content #" + body.id + ": " + body.title, "done");
      } else {
        say("Refused: " + body.message, "error");
      }
    };
    xhr.onerror = function () {
      document.getElementById("ingest-start").disabled = false;
      say("The upload broke off; try again.", "error");
    };
    xhr.send(file);
  });
})();
