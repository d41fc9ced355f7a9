"""Prompt texts of the benchmark jobs (original prose, written for this benchmark)."""

from __future__ import annotations

# Job 1: Captum's Palm Coast example, extended to about 35 tokens.
PALM_COAST = (
    "Dave lives in Palm Coast, FL and is a lawyer. His personal interests include playing "
    "golf on weekends, reading history books, and cooking Italian food for his"
)
PALM_COAST_QUICK = "Dave lives in Palm Coast, FL and is a lawyer. His"

# Jobs 2 and 4: a long passage, cut to the wanted number of tokens at a word boundary.
CORPUS = """\
Port Ellery is a small harbor town on a rocky stretch of the northern coast. For most of its \
history it lived from the sea: fishing boats left before dawn, and by noon the quay smelled of \
salt, tar and fresh cod. The first houses were built by families who came from the inland \
valleys after a long drought, and they chose the bay because its narrow mouth kept out the \
worst winter storms. A granite lighthouse was raised on the northern headland in 1871, and its \
keeper kept a logbook of every ship that passed, a habit that later keepers continued for more \
than a century.

In the early years the town had no road to the rest of the country. Goods arrived by boat, and \
letters took two weeks to reach the capital. When the railway finally reached the valley in \
1903, a narrow track was laid down the cliffs to the harbor, and the fishermen began to send \
their catch to city markets packed in ice. The new trade made some families rich and ruined \
others, because the merchants who owned the ice houses set the prices. A long dispute over \
those prices ended only when the fishermen formed a cooperative and built an ice house of \
their own behind the old chapel.

The cooperative changed the shape of the town. It paid for a school, a small clinic and a \
reading room where anyone could borrow books for free. The reading room was run for forty \
years by a retired teacher named Agnes Morrow, who believed that every child should learn to \
swim, to sail and to read a map before the age of twelve. Her lessons were remembered long \
after she died, and the town library still carries her name above its door. Many of her former \
pupils became captains, engineers and doctors, and several returned to Port Ellery to work.

Life on the coast was never easy. In the winter of 1932 a storm drove three boats onto the \
rocks below the lighthouse, and eleven men were lost. The town built a stone memorial on the \
quay, and every year on the first Sunday of February the bells of the chapel ring eleven times \
at dawn. After the storm the cooperative bought a motor lifeboat and trained volunteers to \
crew it. The lifeboat station still operates today, and its crews have rescued hundreds of \
sailors, swimmers and walkers caught by the rising tide on the sandbanks to the south.

During the second half of the century fishing declined. The large trawlers of distant ports \
emptied the banks where Port Ellery's small boats had worked for generations, and young people \
left to find work in the cities. For a while the town seemed likely to disappear. Then, in the \
nineteen seventies, painters and writers discovered the harbor and its light, and they began \
to buy the empty net lofts and turn them into studios. Tourists followed the artists, and the \
old ice house became a gallery with a cafe on its roof that looks out over the bay.

Today Port Ellery has about four thousand residents, twice as many in the summer. A handful of \
boats still fish for crab and lobster, and the cooperative sells their catch each morning in a \
covered market on the quay. The school has grown, the clinic has become a small hospital, and \
a ferry now links the town to the islands offshore three times a day. The lighthouse was \
automated in 1989, but the keeper's cottage is open to visitors, and the old logbooks are \
displayed in glass cases, each page filled with careful handwriting, weather notes and the \
names of ships long gone.

Visitors who climb the path to the headland can see the whole history of the town at once: the \
chapel and its memorial, the gallery on the old ice house, the lifeboat station with its red \
doors, the market stalls under their canvas roofs and, far out at sea, the ferry making its \
slow way toward the islands. Local guides like to end their tours there, pointing out where \
each family first built its house, and telling the story of the drought that brought them to \
the bay. Most of them finish with the same words that Agnes Morrow wrote in the front of every \
book she lent: the sea gives and the sea takes, so learn what it can teach you.

In recent years the town council has argued about how to keep Port Ellery alive without \
turning it into a museum. Some members want a larger marina for yachts, which would bring \
money but change the harbor forever. Others want cheaper housing for young families, so that \
the school does not have to close. The debate has filled the reading room on many evenings, \
and the local newspaper prints letters on both sides every week. Whatever they decide, most \
residents agree that the lighthouse, the chapel bells and the cooperative market should stay \
exactly as they are, because without them Port Ellery would be just another pretty harbor.

The keepers' logbooks have also become a source for scientists. A team from the coastal \
university copied every entry about wind, fog and sea ice, and compared the old notes with \
modern measurements. Their study showed that winter storms now arrive later in the year than \
they did in the days of sail, and that fog has become less common in the bay. The researchers \
thanked the town by donating a weather station, which now stands next to the lighthouse and \
sends its readings to the harbor office every ten minutes.
"""

# Job 3: retrieval-style prompt, eight short passages and a question.
PASSAGES = [
    "The Harbor Museum opens at nine in the morning and closes at five on weekdays.",
    "The ferry to the islands leaves the quay three times a day, weather permitting.",
    "Port Ellery's lighthouse was built on the northern headland in 1871 from local granite.",
    "The cooperative market sells crab and lobster every morning under a canvas roof.",
    "Agnes Morrow ran the town's reading room for forty years and taught children to swim.",
    "The lifeboat station was founded after a storm in 1932 drove three boats onto the rocks.",
    "The old ice house behind the chapel is now a gallery with a rooftop cafe.",
    "The lighthouse was automated in 1989, and its keeper's cottage is open to visitors.",
]
QUESTION = "In which year was the lighthouse in Port Ellery built?"
ANSWER = " It was built in 1871."


def retrieval_template(n_passages: int) -> str:
    """A prompt template with one ``{}`` slot per passage, then the question."""
    lines = ["Answer the question using the passages below.", ""]
    lines += [f"[{i + 1}] {{}}" for i in range(n_passages)]
    lines += ["", f"Question: {QUESTION}", "Answer:"]
    return "\n".join(lines)
