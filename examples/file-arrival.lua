-- Process files arriving in an inbox directory. A cheap poll every 10
-- seconds counts the files; the processing job fires when the count goes up.

local inbox = os.getenv("INBOX") or (os.getenv("HOME") .. "/inbox")

every("10 seconds", string.format([[
  mkdir -p %q/done
  whenlua set --type int inbox_files=$(find %q -maxdepth 1 -type f | wc -l)
]], inbox, inbox), { name = "inbox.count" })

when("increases('inbox_files')", string.format([[
  for f in %q/*; do
    [ -f "$f" ] || continue
    echo "processing $f"
    mv "$f" %q/done/
  done
]], inbox, inbox), { name = "inbox.process", pre = one() })
