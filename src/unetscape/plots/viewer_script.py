"""The script of the light 3-D pages (`surface_viewer`): a WebGL surface viewer in plain
JavaScript, a few dozen kilobytes where plotly.js is about 5 MB.

A page holds its data as JSON in `<script id="landscape-data" type="application/json">`: a
title, a colour map (RGB rows in [0, 1]) and runs, each with planes (see
`surface_viewer.plane_entry`). Arrays are little-endian float32, base64-encoded. For each plane
the viewer draws the shaded surface with its grid lines inside a box with ticked axes, a colour
bar, the measured weights as a white point and, where the plane has one, the training path;
dragging rotates, the wheel zooms, a double click resets the view and hovering a point shows
its values. Kept as a Python string so that an edit to it re-runs the jobs that write pages
(the workflow derives a rule's code inputs from the modules its script imports).
"""

SCRIPT = r"""
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("landscape-data").textContent);
  var LIFT = 0.012;           // lines and points ride this far above the surface (box units)
  var ZSPAN = 0.6;            // the box is [-1, 1] x [-1, 1] x [-ZSPAN, ZSPAN]
  var LIGHT = normalize([0.35, 0.45, 1.0]);

  function floats(text) {
    var binary = atob(text), bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return new Float32Array(bytes.buffer);
  }
  function sub(a, b) { return [a[0] - b[0], a[1] - b[1], a[2] - b[2]]; }
  function dot(a, b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
  function cross(a, b) { return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]; }
  function normalize(a) { var n = Math.sqrt(dot(a, a)) || 1; return [a[0] / n, a[1] / n, a[2] / n]; }
  // 4x4 matrices in WebGL's column-major order
  function perspective(fovy, aspect, near, far) {
    var f = 1 / Math.tan(fovy / 2), nf = 1 / (near - far);
    return [f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) * nf, -1, 0, 0, 2 * far * near * nf, 0];
  }
  function lookAt(eye, centre, up) {
    var z = normalize(sub(eye, centre)), x = normalize(cross(up, z)), y = cross(z, x);
    return [x[0], y[0], z[0], 0, x[1], y[1], z[1], 0, x[2], y[2], z[2], 0,
            -dot(x, eye), -dot(y, eye), -dot(z, eye), 1];
  }
  function multiply(a, b) {
    var out = new Array(16);
    for (var c = 0; c < 4; c++) for (var r = 0; r < 4; r++) {
      var s = 0;
      for (var k = 0; k < 4; k++) s += a[k * 4 + r] * b[c * 4 + k];
      out[c * 4 + r] = s;
    }
    return out;
  }
  function niceTicks(lo, hi, count) {
    var span = hi - lo;
    if (!(span > 0)) return {ticks: [lo], step: Math.abs(lo) || 1};
    var raw = span / count, mag = Math.pow(10, Math.floor(Math.log10(raw))), r = raw / mag;
    var step = (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag, ticks = [];
    for (var v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) ticks.push(+v.toPrecision(12));
    return {ticks: ticks, step: step};
  }
  function label(v, step) {
    var digits = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
    return (Math.abs(v) < step * 1e-6 ? 0 : v).toFixed(digits);  // no "-0.0"
  }
  function el(tag, cls, parent) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (parent) parent.appendChild(node);
    return node;
  }
  function colourOf(t) {
    var map = DATA.colormap, k = Math.max(0, Math.min(map.length - 1, Math.round(t * (map.length - 1))));
    return map[k];
  }

  var VERTEX = "attribute vec3 position; attribute vec4 colour; uniform mat4 mvp; uniform float size;" +
    "varying vec4 tint; void main() { gl_Position = mvp * vec4(position, 1.0); gl_PointSize = size; tint = colour; }";
  var FRAGMENT = "precision mediump float; varying vec4 tint; uniform float round;" +
    "void main() { vec2 d = gl_PointCoord - 0.5; if (round > 0.5 && dot(d, d) > 0.25) discard; gl_FragColor = tint; }";

  function Panel(parent) {
    this.root = el("div", "panel", parent);
    this.heading = el("div", "panel-title", this.root);
    var row = el("div", "panel-row", this.root);
    this.box = el("div", "panel-box", row);
    this.canvas = el("canvas", "gl", this.box);
    this.overlay = el("canvas", "overlay", this.box);
    this.tip = el("div", "tip", this.box);
    this.message = el("div", "message", this.box);
    this.bar = el("div", "bar", row);
    this.azimuth = -2.2; this.elevation = 0.5; this.distance = 5.8;
    this.gl = this.canvas.getContext("webgl", {antialias: true, preserveDrawingBuffer: true});
    if (!this.gl) {
      this.message.textContent = "This view needs WebGL, which this browser does not offer.";
      return;
    }
    this.program = this.compile();
    this.listen();
  }

  Panel.prototype.compile = function () {
    var gl = this.gl, program = gl.createProgram();
    [[gl.VERTEX_SHADER, VERTEX], [gl.FRAGMENT_SHADER, FRAGMENT]].forEach(function (part) {
      var shader = gl.createShader(part[0]);
      gl.shaderSource(shader, part[1]);
      gl.compileShader(shader);
      gl.attachShader(program, shader);
    });
    gl.linkProgram(program);
    return program;
  };

  Panel.prototype.listen = function () {
    var self = this, dragging = null;
    this.overlay.addEventListener("pointerdown", function (e) {
      dragging = [e.clientX, e.clientY];
      self.overlay.setPointerCapture(e.pointerId);
    });
    this.overlay.addEventListener("pointerup", function () { dragging = null; });
    this.overlay.addEventListener("pointermove", function (e) {
      if (dragging) {
        self.azimuth -= (e.clientX - dragging[0]) * 0.01;
        self.elevation = Math.max(0.05, Math.min(1.5, self.elevation + (e.clientY - dragging[1]) * 0.01));
        dragging = [e.clientX, e.clientY];
        self.tip.style.display = "none";
        self.draw();
      } else {
        self.hover(e);
      }
    });
    this.overlay.addEventListener("pointerleave", function () { self.tip.style.display = "none"; });
    this.overlay.addEventListener("wheel", function (e) {
      e.preventDefault();
      self.distance = Math.max(2.0, Math.min(12, self.distance * Math.exp(e.deltaY * 0.001)));
      self.draw();
    }, {passive: false});
    this.overlay.addEventListener("dblclick", function () {
      self.azimuth = -2.2; self.elevation = 0.5; self.distance = 5.8;
      self.draw();
    });
  };

  // The plane's geometry in box units: surface triangles, grid lines, the frame, the path and
  // the points a pointer can hover.
  Panel.prototype.show = function (plane) {
    this.heading.textContent = plane.title;
    this.plane = plane;
    this.bar.innerHTML = "";
    this.tip.style.display = "none";
    if (!this.gl) return;
    if (plane.unavailable) {
      this.message.textContent = "no landscape: " + plane.unavailable;
      this.lists = [];
      this.targets = [];
      this.draw();
      return;
    }
    this.message.textContent = "";
    var x = floats(plane.x), y = floats(plane.y), z = floats(plane.loss);
    var dice = floats(plane.dice), iou = floats(plane.iou), nx = x.length, ny = y.length;
    var lo = Infinity, hi = -Infinity;
    for (var k = 0; k < z.length; k++) if (isFinite(z[k])) { lo = Math.min(lo, z[k]); hi = Math.max(hi, z[k]); }
    if (!(hi > lo)) hi = lo + 1e-6;
    this.range = {x: [x[0], x[nx - 1]], y: [y[0], y[ny - 1]], z: [lo, hi]};
    var range = this.range;
    function bx(v) { return -1 + 2 * (v - range.x[0]) / (range.x[1] - range.x[0]); }
    function by(v) { return -1 + 2 * (v - range.y[0]) / (range.y[1] - range.y[0]); }
    function bz(v) { return -ZSPAN + 2 * ZSPAN * (v - lo) / (hi - lo); }
    function at(i, j) { return z[j * nx + i]; }
    function finite(i, j) { return i >= 0 && j >= 0 && i < nx && j < ny && isFinite(at(i, j)); }
    var positions = [], shades = [];
    for (var j = 0; j < ny; j++) for (var i = 0; i < nx; i++) {
      var v = at(i, j), p = [bx(x[i]), by(y[j]), bz(v)];
      positions.push(p);
      if (!isFinite(v)) { shades.push(null); continue; }
      var il = finite(i - 1, j) ? i - 1 : i, ir = finite(i + 1, j) ? i + 1 : i;
      var jl = finite(i, j - 1) ? j - 1 : j, jr = finite(i, j + 1) ? j + 1 : j;
      var dx = ir > il ? (bz(at(ir, j)) - bz(at(il, j))) / (bx(x[ir]) - bx(x[il])) : 0;
      var dy = jr > jl ? (bz(at(i, jr)) - bz(at(i, jl))) / (by(y[jr]) - by(y[jl])) : 0;
      var light = 0.62 + 0.38 * Math.max(0, dot(normalize([-dx, -dy, 1]), LIGHT));
      var c = colourOf((v - lo) / (hi - lo));
      shades.push([c[0] * light, c[1] * light, c[2] * light, 1]);
    }
    var surface = [], grid = [], frame = [], targets = [];
    function vertex(list, p, c, lift) { list.push(p[0], p[1], p[2] + (lift || 0), c[0], c[1], c[2], c[3]); }
    for (j = 0; j + 1 < ny; j++) for (i = 0; i + 1 < nx; i++) {
      var a = j * nx + i, b = a + 1, d = a + nx, e = d + 1;
      if (!shades[a] || !shades[b] || !shades[d] || !shades[e]) continue;
      [a, b, e, a, e, d].forEach(function (q) { vertex(surface, positions[q], shades[q]); });
    }
    var line = [0.1, 0.1, 0.1, 0.35];
    for (j = 0; j < ny; j++) for (i = 0; i < nx; i++) {
      var q = j * nx + i;
      if (!shades[q]) continue;
      if (i + 1 < nx && shades[q + 1]) { vertex(grid, positions[q], line, 0.002); vertex(grid, positions[q + 1], line, 0.002); }
      if (j + 1 < ny && shades[q + nx]) { vertex(grid, positions[q], line, 0.002); vertex(grid, positions[q + nx], line, 0.002); }
      targets.push({p: positions[q], text: plane.xlabel + " " + x[i].toPrecision(4) + "<br>" + plane.ylabel + " " +
        y[j].toPrecision(4) + "<br>Dice loss " + at(i, j).toFixed(5) + "<br>hard Dice " + dice[q].toFixed(4) +
        "<br>IoU " + iou[q].toFixed(4)});
    }
    var grey = [0.55, 0.55, 0.6, 1], corners = [[-1, -1], [1, -1], [1, 1], [-1, 1]];
    for (k = 0; k < 4; k++) {
      var c0 = corners[k], c1 = corners[(k + 1) % 4];
      [-ZSPAN, ZSPAN].forEach(function (h) { vertex(frame, [c0[0], c0[1], h], grey); vertex(frame, [c1[0], c1[1], h], grey); });
      vertex(frame, [c0[0], c0[1], -ZSPAN], grey); vertex(frame, [c0[0], c0[1], ZSPAN], grey);
    }
    function surfaceAt(px, py) {  // bilinear on the grid, in data units; NaN outside or next to a gap
      var fi = (px - x[0]) / (x[nx - 1] - x[0]) * (nx - 1), fj = (py - y[0]) / (y[ny - 1] - y[0]) * (ny - 1);
      if (fi < 0 || fj < 0 || fi > nx - 1 || fj > ny - 1) return NaN;
      var i0 = Math.min(nx - 2, Math.floor(fi)), j0 = Math.min(ny - 2, Math.floor(fj)), u = fi - i0, w = fj - j0;
      return (1 - u) * (1 - w) * at(i0, j0) + u * (1 - w) * at(i0 + 1, j0) + (1 - u) * w * at(i0, j0 + 1) +
        u * w * at(i0 + 1, j0 + 1);
    }
    var path = [], checkpoints = [], marks = [];
    if (plane.path) {
      var red = [0.86, 0.08, 0.24, 1], px = plane.path.x, py = plane.path.y;
      for (k = 0; k + 1 < px.length; k++) for (var s = 0; s < 16; s++) {
        var t0 = s / 16, t1 = (s + 1) / 16;
        var p0 = [px[k] + t0 * (px[k + 1] - px[k]), py[k] + t0 * (py[k + 1] - py[k])];
        var p1 = [px[k] + t1 * (px[k + 1] - px[k]), py[k] + t1 * (py[k + 1] - py[k])];
        var z0 = surfaceAt(p0[0], p0[1]), z1 = surfaceAt(p1[0], p1[1]);
        if (isFinite(z0) && isFinite(z1)) {
          vertex(path, [bx(p0[0]), by(p0[1]), bz(z0)], red, LIFT);
          vertex(path, [bx(p1[0]), by(p1[1]), bz(z1)], red, LIFT);
        }
      }
      for (k = 0; k < px.length; k++) {
        var zk = surfaceAt(px[k], py[k]);
        if (!isFinite(zk)) continue;
        var pk = [bx(px[k]), by(py[k]), bz(zk)];
        vertex(checkpoints, pk, red, LIFT);
        targets.push({p: pk, text: "epoch " + plane.path.epochs[k] + "<br>Dice loss on the plane " + zk.toFixed(5)});
      }
    }
    if (plane.marker) {
      var zm = surfaceAt(plane.marker.x, plane.marker.y);
      if (isFinite(zm)) {
        var pm = [bx(plane.marker.x), by(plane.marker.y), bz(zm)];
        vertex(marks, pm, [0, 0, 0, 1], LIFT);
        targets.push({p: pm, text: plane.marker.label + "<br>Dice loss " + zm.toFixed(5)});
      }
    }
    var gl = this.gl;
    function buffer(list, mode, size, round, blend) {
      var handle = gl.createBuffer();
      gl.bindBuffer(gl.ARRAY_BUFFER, handle);
      gl.bufferData(gl.ARRAY_BUFFER, new Float32Array(list), gl.STATIC_DRAW);
      return {handle: handle, count: list.length / 7, mode: mode, size: size, round: round, blend: blend};
    }
    var white = marks.length ? [marks[0], marks[1], marks[2], 1, 1, 1, 1] : [];
    this.lists = [buffer(frame, gl.LINES, 1, 0, false), buffer(surface, gl.TRIANGLES, 1, 0, false),
                  buffer(grid, gl.LINES, 1, 0, true), buffer(path, gl.LINES, 1, 0, false),
                  buffer(checkpoints, gl.POINTS, 6, 1, false), buffer(marks, gl.POINTS, 12, 1, false),
                  buffer(white, gl.POINTS, 8, 1, false)];
    this.targets = targets;
    this.colourBar();
    this.draw();
  };

  Panel.prototype.colourBar = function () {
    var stops = DATA.colormap.filter(function (_, k) { return k % 8 === 0; }).concat([DATA.colormap[DATA.colormap.length - 1]]);
    var css = stops.map(function (c, k) {
      return "rgb(" + c.map(function (v) { return Math.round(255 * v); }).join(",") + ") " +
        (100 * k / (stops.length - 1)).toFixed(1) + "%";
    });
    var strip = el("div", "bar-strip", this.bar);
    strip.style.background = "linear-gradient(to top, " + css.join(", ") + ")";
    var lo = this.range.z[0], hi = this.range.z[1], ticks = niceTicks(lo, hi, 5);
    ticks.ticks.forEach(function (v) {
      var tick = el("div", "bar-tick", strip);
      tick.style.bottom = (100 * (v - lo) / (hi - lo)) + "%";
      tick.textContent = label(v, ticks.step);
    });
    el("div", "bar-title", this.bar).textContent = this.plane.loss_label || "Dice loss";
  };

  Panel.prototype.camera = function (width, height) {
    var eye = [this.distance * Math.cos(this.elevation) * Math.cos(this.azimuth),
               this.distance * Math.cos(this.elevation) * Math.sin(this.azimuth),
               this.distance * Math.sin(this.elevation)];
    this.eye = eye;
    return multiply(perspective(0.62, width / height, 0.1, 50), lookAt(eye, [0, 0, -0.1], [0, 0, 1]));
  };

  Panel.prototype.project = function (p) {
    var m = this.mvp, w = m[3] * p[0] + m[7] * p[1] + m[11] * p[2] + m[15];
    return [((m[0] * p[0] + m[4] * p[1] + m[8] * p[2] + m[12]) / w * 0.5 + 0.5) * this.width,
            (0.5 - (m[1] * p[0] + m[5] * p[1] + m[9] * p[2] + m[13]) / w * 0.5) * this.height];
  };

  Panel.prototype.draw = function () {
    if (!this.gl) return;
    var ratio = window.devicePixelRatio || 1, width = this.box.clientWidth, height = this.box.clientHeight;
    [this.canvas, this.overlay].forEach(function (c) {
      c.width = Math.round(width * ratio); c.height = Math.round(height * ratio);
      c.style.width = width + "px"; c.style.height = height + "px";
    });
    this.width = width; this.height = height;
    this.mvp = this.camera(width, height);
    var gl = this.gl, program = this.program;
    gl.viewport(0, 0, this.canvas.width, this.canvas.height);
    gl.clearColor(1, 1, 1, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    gl.enable(gl.DEPTH_TEST);
    gl.depthFunc(gl.LEQUAL);  // the white point is drawn on top of its black rim
    gl.useProgram(program);
    gl.uniformMatrix4fv(gl.getUniformLocation(program, "mvp"), false, new Float32Array(this.mvp));
    var position = gl.getAttribLocation(program, "position"), colour = gl.getAttribLocation(program, "colour");
    (this.lists || []).forEach(function (list) {
      if (!list.count) return;
      gl.bindBuffer(gl.ARRAY_BUFFER, list.handle);
      gl.enableVertexAttribArray(position);
      gl.vertexAttribPointer(position, 3, gl.FLOAT, false, 28, 0);
      gl.enableVertexAttribArray(colour);
      gl.vertexAttribPointer(colour, 4, gl.FLOAT, false, 28, 12);
      gl.uniform1f(gl.getUniformLocation(program, "size"), list.size * ratio);
      gl.uniform1f(gl.getUniformLocation(program, "round"), list.round);
      if (list.blend) { gl.enable(gl.BLEND); gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA); } else gl.disable(gl.BLEND);
      gl.drawArrays(list.mode, 0, list.count);
    });
    this.axes(ratio);
  };

  // Ticks and axis titles on the 2-D overlay: x and y along the box's edges nearer the viewer,
  // the loss along its left-most vertical edge.
  Panel.prototype.axes = function (ratio) {
    var ctx = this.overlay.getContext("2d"), self = this, plane = this.plane;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, this.width, this.height);
    if (!plane || plane.unavailable || !this.range) return;
    ctx.font = "11px sans-serif";
    ctx.fillStyle = "#333";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    var ey = this.eye[1] >= 0 ? 1 : -1, ex = this.eye[0] >= 0 ? 1 : -1, range = this.range;
    function write(text, p, bold) {
      var s = self.project(p);
      ctx.font = (bold ? "bold " : "") + "11px sans-serif";
      ctx.fillText(text, s[0], s[1]);
    }
    function along(axis, lo, hi, place, titlePlace, title) {
      var ticks = niceTicks(lo, hi, 4);
      ticks.ticks.forEach(function (v) { write(label(v, ticks.step), place(-1 + 2 * (v - lo) / (hi - lo))); });
      write(title, titlePlace, true);
    }
    along("x", range.x[0], range.x[1], function (t) { return [t, ey * 1.16, -ZSPAN]; }, [0, ey * 1.55, -ZSPAN], plane.xlabel);
    along("y", range.y[0], range.y[1], function (t) { return [ex * 1.16, t, -ZSPAN]; }, [ex * 1.55, 0, -ZSPAN], plane.ylabel);
    var best = null;
    [[-1, -1], [1, -1], [1, 1], [-1, 1]].forEach(function (c) {
      var s = self.project([c[0], c[1], -ZSPAN]);
      if (best === null || s[0] < best.s[0]) best = {c: c, s: s};
    });
    var zt = niceTicks(range.z[0], range.z[1], 4);
    ctx.textAlign = "right";
    zt.ticks.forEach(function (v) {
      var s = self.project([best.c[0] * 1.04, best.c[1] * 1.04, -ZSPAN + 2 * ZSPAN * (v - range.z[0]) / (range.z[1] - range.z[0])]);
      ctx.font = "11px sans-serif";
      ctx.fillText(label(v, zt.step), s[0] - 4, s[1]);
    });
    var top = self.project([best.c[0], best.c[1], ZSPAN]);
    ctx.font = "bold 11px sans-serif";
    ctx.textAlign = "left";
    ctx.fillText(plane.loss_label || "Dice loss", Math.max(4, top[0] - 30), Math.max(10, top[1] - 24));
    this.screen = this.targets.map(function (t) { return self.project(t.p); });
  };

  Panel.prototype.hover = function (e) {
    if (!this.screen || !this.screen.length) return;
    var rect = this.overlay.getBoundingClientRect(), mx = e.clientX - rect.left, my = e.clientY - rect.top;
    var best = -1, bestDistance = 144;
    for (var k = 0; k < this.screen.length; k++) {
      var dx = this.screen[k][0] - mx, dy = this.screen[k][1] - my, d = dx * dx + dy * dy;
      if (d <= bestDistance) { best = k; bestDistance = d; }
    }
    if (best < 0) { this.tip.style.display = "none"; return; }
    this.tip.innerHTML = this.targets[best].text;
    this.tip.style.display = "block";
    this.tip.style.left = Math.min(this.width - 170, this.screen[best][0] + 10) + "px";
    this.tip.style.top = Math.max(0, this.screen[best][1] - 70) + "px";
  };

  var root = document.getElementById("viewer");
  var controls = el("div", "controls", root);
  var note = el("div", "note", root);
  var panels = el("div", "panels", root);
  var views = [new Panel(panels), new Panel(panels)];
  var select = null;
  if (DATA.runs.length > 1) {
    el("label", "", controls).textContent = "run ";
    select = el("select", "", controls);
    DATA.runs.forEach(function (run, k) {
      var option = el("option", "", select);
      option.value = k;
      option.textContent = run.name + (run.note ? " " + run.note : "");
    });
  }
  function show(k) {
    var run = DATA.runs[k];
    if (!select) note.textContent = run.name + (run.note ? " " + run.note : "");
    views.forEach(function (view, p) { view.show(run.planes[p]); });
  }
  if (select) select.addEventListener("change", function () { show(+select.value); });
  window.addEventListener("resize", function () { views.forEach(function (v) { v.draw(); }); });
  show(0);
  document.body.setAttribute("data-drawn", "true");
})();
"""

STYLE = """
body { font-family: sans-serif; margin: 12px; color: #222; }
h1 { font-size: 17px; margin: 0 0 4px; }
.help { font-size: 12px; color: #555; margin-bottom: 8px; }
.controls { font-size: 13px; margin-bottom: 6px; }
.controls select { font-size: 13px; max-width: 100%; }
.note { font-size: 13px; font-weight: bold; margin-bottom: 6px; }
.panels { display: flex; flex-wrap: wrap; gap: 12px; }
.panel { flex: 1 1 420px; min-width: 340px; }
.panel-title { font-size: 13px; text-align: center; margin-bottom: 2px; }
.panel-row { display: flex; align-items: center; }
.panel-box { position: relative; flex: 1 1 auto; height: 400px; }
.panel-box canvas { position: absolute; left: 0; top: 0; }
.overlay { cursor: grab; }
.tip { position: absolute; display: none; pointer-events: none; background: rgba(255,255,255,0.95);
       border: 1px solid #888; padding: 4px 6px; font-size: 11px; line-height: 1.35; width: 150px; }
.message { position: absolute; left: 10%; right: 10%; top: 45%; text-align: center; color: #b00; font-size: 13px; }
.bar { flex: 0 0 62px; height: 280px; position: relative; }
.bar-strip { position: absolute; left: 6px; top: 0; bottom: 22px; width: 14px; border: 1px solid #999; }
.bar-tick { position: absolute; left: 18px; transform: translateY(50%); font-size: 10px; white-space: nowrap; }
.bar-tick::before { content: ""; position: absolute; left: -5px; top: 50%; width: 4px; border-top: 1px solid #555; }
.bar-title { position: absolute; bottom: 0; left: 0; font-size: 11px; white-space: nowrap; }
"""
