/* The citizens' pages: the large-text mode chosen before, applied before the page is drawn
   (loaded without defer in <head>; assistant.js has the switch itself). */
try { if (localStorage.getItem("hotline-elder") === "1") document.documentElement.classList.add("elder"); } catch (e) {}
