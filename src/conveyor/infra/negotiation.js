// conveyor media variants: the best stored format the viewer accepts, as
// conveyor.core.media.negotiated chooses it; the __NAMES__ are filled in from that module.
var MODERN = __MODERN__;
var OFFER = __OFFER__;

function accepted(header) {
  var found = [];
  header.split(",").forEach(function (part) {
    var pieces = part.split(";").map(function (p) { return p.trim(); });
    var refused = pieces.slice(1).some(function (p) {
      return /^q=0(\.0{0,3})?$/i.test(p);
    });
    if (pieces[0] && !refused) found.push(pieces[0].toLowerCase());
  });
  return found;
}

function handler(event) {
  if (event.context.eventType === "viewer-response") {
    event.response.headers[__VARY_HEADER__] = { value: __VARY_VALUE__ };
    return event.response;
  }
  var request = event.request;
  var offered = request.querystring[OFFER] ? request.querystring[OFFER].value : "";
  var offers = offered.split(",").map(function (name) { return "." + name.trim(); });
  var types = accepted(request.headers.accept ? request.headers.accept.value : "");
  var dot = request.uri.lastIndexOf(".");
  for (var i = 0; i < MODERN.length; i++) {
    var kind = MODERN[i][0], extension = MODERN[i][1];
    if (dot > 0 && offers.indexOf(extension) >= 0 && types.indexOf(kind) >= 0) {
      request.uri = request.uri.slice(0, dot) + extension;
      break;
    }
  }
  return request;
}
