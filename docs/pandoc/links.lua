-- links.lua: pandoc filter of make docs. Links between the Markdown documents point to their HTML
-- renderings, and the wide diagrams (the servers, the night's overview) get a landscape page of
-- their own in the PDF.
function Link(el)
  if not el.target:match("://") then
    el.target = el.target:gsub("%.md$", ".html"):gsub("%.md#", ".html#")
  end
  return el
end

function Para(el)
  if #el.content == 1 and el.content[1].t == "Image" and (el.content[1].src:match("servers%.svg$") or el.content[1].src:match("overview%.svg$")) then
    return pandoc.Div({ el }, { class = "wide" })
  end
end
