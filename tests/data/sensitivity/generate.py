#!/usr/bin/env python3
"""generate.py: writes labelled.jsonl, the labelled set the shipped sensitivity head is fitted on.

Why generated: a head needs hundreds of lines in which the same kinds of content appear in many
phrasings; templates with slots give that, deterministically (fixed seed), and the templates
themselves are the readable part. Sensitive (1): a named or identifiable person tied to health,
HR, money or family matters; credentials; confidential business material. Not sensitive (0): the
same topics asked about in general (symptoms of a disease, how to write a review), technical and
everyday questions, public facts. Regenerate with `python3 generate.py > labelled.jsonl`.
"""
import json
import random

random.seed(11)

FIRST = ["Maria", "James", "Aisha", "Tom", "Priya", "Lukas", "Sofia", "Daniel", "Mei", "Omar", "Elena",
         "Kwame", "Hannah", "Raj", "Chloe", "Mateo", "Yuki", "Fatima", "Peter", "Grace"]
LAST = ["Garcia", "Okafor", "Schmidt", "Nguyen", "Patel", "Kowalski", "Rossi", "Haddad", "Lindqvist",
        "O'Brien", "Tanaka", "Moreau", "Fischer", "Mensah", "Silva", "Cohen"]
RELATION = ["my wife", "my husband", "my mother", "my father", "my son", "my daughter", "my brother",
            "my sister", "my colleague", "my manager", "our patient", "my neighbour"]
CONDITION = ["type 2 diabetes", "major depression", "stage II breast cancer", "HIV", "bipolar disorder",
             "early-onset Alzheimer's", "an opioid addiction", "epilepsy", "a heart arrhythmia",
             "generalised anxiety disorder", "Crohn's disease", "a miscarriage last month"]
DRUG = ["metformin", "sertraline", "lithium", "methadone", "insulin glargine", "levetiracetam",
        "tamoxifen", "quetiapine", "adalimumab", "warfarin"]
HR_EVENT = ["is being put on a performance improvement plan", "will be terminated on Friday",
            "filed a harassment complaint against her team lead", "is on medical leave until March",
            "failed the background check", "asked for a disability accommodation",
            "is getting a written warning for absences", "was passed over for promotion after the review",
            "disclosed that he is going through a divorce", "is negotiating a severance package"]
MONEY = ["earns $148,000 a year", "has $23,400 in credit card debt", "missed three mortgage payments",
         "got a salary raise to 92k", "owes back taxes of 18,000 euros", "declared bankruptcy in 2021"]
CONFIDENTIAL = ["the unannounced acquisition of {co} planned for Q3",
                "our Q2 revenue numbers before the earnings call",
                "the draft layoff list for the Berlin office",
                "the board's confidential memo on the {co} lawsuit",
                "internal-only pricing for the {co} contract",
                "the source code of our unreleased fraud model",
                "the settlement terms with {co}, which are under NDA",
                "the password for the production database"]
COMPANY = ["Northwind", "Contoso", "Globex", "Initech", "Umbrella Corp", "Acme Logistics", "Vandelay"]
TASK = ["Rewrite this more politely", "Summarise this for me", "Draft an email about this",
        "Help me reply to this", "Translate this to German", "Fix the grammar here",
        "Make this shorter", "Turn this into bullet points"]
SECRET_LINES = ["password: Tr0ub4dor&3x!", "db_pass = 'h7$Kq92!zPm'", "my PIN is 4821 and the card ends 7713",
                "api_secret=sk_live_51HxQ2eKpL0nR8vT3", "login: {first}.{last} / Winter2024!"]

SENSITIVE_TEMPLATES = [
    "{task}: {first} {last} was diagnosed with {condition} and is starting {drug} next week.",
    "{rel} {first} has {condition}. What dose of {drug} is safe for someone her age?",
    "{task}: Patient {first} {last}, DOB 03/14/1979, presented with symptoms of {condition}.",
    "{first} {last} from accounting {hr}. Write the note to the team without saying why.",
    "{task}: Dear HR, my colleague {first} {last} {hr}.",
    "{rel} {money} and I want to hide this from the rest of the family. What should I do?",
    "{task}: {first} {last} {money}; please prepare the loan memo.",
    "Here is {conf}. {task}.",
    "{task} - CONFIDENTIAL: {conf}.",
    "I'm pasting {conf} below, do not share it outside the team. {task}.",
    "{task}: my therapist says my {condition} is getting worse since the divorce.",
    "I was just told I have {condition}. How do I tell my employer, {co}, without losing my job?",
    "Write a performance review for {first} {last}: missed targets, {hr}, salary 78k.",
    "{task}: {first}'s home address is 14 Elm Street, Springfield, and {rel} {hr}.",
    "Can you check this config for me? {secret}",
    "{task}: our customer {first} {last} (account 4471-2290) {money}.",
    "Medical note for {first} {last}: on {drug} for {condition}, allergic to penicillin.",
    "{rel} tested positive for {condition}. Should the school be told?",
]

GENERAL = ["What are the early symptoms of {condition}?", "How does {drug} work in the body?",
           "Explain the difference between a PIP and a written warning in general terms.",
           "How should a manager structure a fair performance review?",
           "What is a typical salary range for a data engineer in Lisbon?",
           "Write a job description for a senior backend engineer at {co}.",
           "Summarise the public history of {co}.", "What does an NDA usually contain?",
           "Explain how mortgage interest is calculated.", "How do I compute compound interest in Python?",
           "{task}: The meeting moved to Thursday at 3pm in room 4B.",
           "{task}: Thanks everyone for a great quarter, the offsite is in May.",
           "Write a Python function that validates an email address format.",
           "How do I store passwords securely with bcrypt?", "What is the capital of Australia?",
           "Give me a recipe for a vegetarian lasagne.", "Explain photosynthesis to a ten-year-old.",
           "What are common side effects of {drug} according to the leaflet?",
           "How is {condition} usually diagnosed?", "{task}: The new office opens on Monday.",
           "Write a SQL query that counts orders per customer per month.",
           "What is the difference between TCP and UDP?", "Plan a three-day trip to Kyoto.",
           "Draft a polite reminder that the library books are due.",
           "Explain what a hash function is and why collisions matter.",
           "What are best practices for onboarding new employees?",
           "How do vaccines train the immune system?", "Summarise the plot of Hamlet.",
           "What's a good way to learn Spanish in six months?",
           "Write a short story about {first}, a lighthouse keeper who finds a map.",
           "{task}: Our product now supports dark mode and CSV export.",
           "How do I set up a Kubernetes readiness probe?",
           "Explain what HR means by 'at-will employment' in the US.",
           "What is the average life expectancy in Japan?", "How do I fix a leaking kitchen tap?",
           "Compare index funds and ETFs for a beginner.", "What causes inflation?",
           "Write a birthday message for {first}, who loves hiking.",
           "{first} asked me how to configure nginx as a reverse proxy; explain it simply.",
           "Help {first} {last} write a launch announcement for {co}'s new app.",
           "{task}: {first} will present the roadmap at the all-hands on Tuesday.",
           "Suggest a name for {first}'s new bakery.", "{rel} wants to learn chess. Where should he start?",
           "{task}: Welcome {first} {last}, who joins the design team next week!",
           "What questions should I ask {co} in a job interview for a product role?"]


def fill(t):
    return t.format(first=random.choice(FIRST), last=random.choice(LAST), rel=random.choice(RELATION),
                    condition=random.choice(CONDITION), drug=random.choice(DRUG), hr=random.choice(HR_EVENT),
                    money=random.choice(MONEY), conf=random.choice(CONFIDENTIAL).format(co=random.choice(COMPANY)),
                    co=random.choice(COMPANY), task=random.choice(TASK),
                    secret=random.choice(SECRET_LINES).format(first="anna", last="berg"))


sensitive, general = set(), set()
for _ in range(20000):
    if random.random() < 0.5:
        sensitive.add(fill(random.choice(SENSITIVE_TEMPLATES)))
    else:
        general.add(fill(random.choice(GENERAL)))
rows = [(t, 1) for t in random.sample(sorted(sensitive), min(400, len(sensitive)))] + \
    [(t, 0) for t in random.sample(sorted(general), min(400, len(general)))]
for text, label in sorted(rows):
    print(json.dumps({"text": text, "sensitive": label}))
