/* wordlists.c: the detectors' vocabulary, and the table that looks it up.
 *
 * People and health data must be found without a model, so the detectors
 * need words: given names and surnames, honorifics, relation and role words,
 * conditions and medications, and the context words that, as in Presidio,
 * raise the confidence of a nearby number. Each row below gives a role and
 * the words that play it; a word may play several roles. Adding a word is
 * adding it to a row. The rows are loaded into one open-addressing hash
 * table per detector, read-only afterwards.
 */
#include "detect_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    uint32_t flags;
    const char *words;   /* lower case, separated by spaces */
} rows[] = {
    /* ---- context words of the number detectors ---- */
    {LEX_CTX_EMAIL, "email e mail mailto contact inbox"},
    {LEX_CTX_PHONE, "phone telephone tel mobile cell cellphone call text whatsapp fax contact reach "
                    "ring dial sms landline"},
    {LEX_CTX_SSN, "ssn ss social security taxpayer tin itin ssns"},
    {LEX_CTX_CARD, "card credit debit visa mastercard amex discover payment cc cvv cvc expiry "
                   "pan billing charged charge cardholder"},
    {LEX_CTX_IBAN, "iban bank account transfer wire swift bic sepa"},
    {LEX_CTX_IP, "ip ipv4 ipv6 address host server client connected connection connect ping from "
                 "src dst source remote login logged attacker firewall blocked gateway addr peer "
                 "origin request requests upstream downstream vpn lan wan proxy node"},
    {LEX_CTX_DOB, "born dob birth birthday birthdate"},
    {LEX_CTX_PASSPORT, "passport"},
    {LEX_CTX_LICENSE, "license licence dl"},
    {LEX_NEG_NUMBER, "isbn order invoice ticket tracking version build release sku item product "
                     "serial ref reference issue pr commit pid uid bug case po shipment parcel part "
                     "route exit room flight"},
    {LEX_BEARER, "bearer"},
    {LEX_MONTH, "january february march april may june july august september october november "
                "december jan feb mar apr jun jul aug sep sept oct nov dec"},
    {LEX_STREET, "street st avenue ave road rd boulevard blvd lane ln drive dr court ct place pl "
                 "terrace way circle cir highway hwy parkway pkwy square sq crescent close grove "
                 "gardens row trail plaza strasse"},

    /* ---- people ---- */
    {LEX_HONORIFIC, "mr mrs ms miss dr prof mx sir madam dame lady rev"},
    {LEX_RELATION | LEX_ANCHOR, "mother father mom mum dad mommy daddy sister brother son daughter "
                                "wife husband spouse partner girlfriend boyfriend fiance fiancee "
                                "aunt uncle cousin niece nephew grandmother grandfather grandma "
                                "grandpa granny grandson granddaughter stepmother stepfather "
                                "stepson stepdaughter sibling child kid baby boss friend roommate "
                                "neighbor neighbour colleague coworker"},
    {LEX_ROLE | LEX_ANCHOR, "patient employee client customer tenant student teammate manager "
                            "resident applicant candidate intern contractor worker caregiver "
                            "victim suspect defendant plaintiff inmate staffer subordinate"},
    /* after a role word, a noun that makes it a modifier ("patient portal",
     * "customer support", "employee records"), not a person */
    {LEX_ROLE_NOUN, "portal portals education record records information info data database "
                    "management satisfaction experience engagement onboarding safety support "
                    "service services care schema table tables list lists form forms id ids "
                    "journey journeys feedback app apps account accounts handbook policy "
                    "policies training survey surveys directory"},
    {LEX_ANCHOR, "my his her their our i me he she him mine hers"},
    /* words a Roman numeral follows: "type I diabetes", "stage I", "bipolar I", "World War I" */
    {LEX_NUMBERED, "type types stage phase grade class war part chapter level tier act volume section "
                   "bipolar"},
    /* verbs of a request: "me" after them is the one asking ("tell me about insulin") */
    {LEX_REQUEST, "tell give show help explain teach remind let send get write make find list walk "
                  "ask describe recommend suggest quiz brief guide answer draft generate create "
                  "summarize summarise"},
    {LEX_NOT_NAME, "the a an this that these those there then they we you it its what when where "
                   "why how who which hello hi hey dear thanks thank please yes no ok okay and or "
                   "but if so also monday tuesday wednesday thursday friday saturday sunday today "
                   "tomorrow yesterday january february march april june july august september "
                   "october november december python java linux windows google amazon apple "
                   "microsoft github team company department hr it ceo cto"},

    /* given names that are not ordinary words */
    {LEX_FIRST_NAME,
     "james john robert michael william david richard joseph thomas charles christopher daniel "
     "matthew anthony donald steven paul andrew joshua kenneth kevin brian george timothy ronald "
     "edward jason jeffrey ryan jacob gary nicholas eric jonathan stephen larry justin scott brandon "
     "benjamin samuel gregory alexander patrick raymond jack dennis jerry tyler aaron jose adam "
     "nathan henry douglas zachary peter kyle ethan walter noah jeremy christian keith roger terry "
     "gerald harold sean austin carl arthur lawrence dylan jesse jordan bryan billy joe bruce gabriel "
     "logan albert willie alan juan wayne elijah randy roy vincent ralph eugene russell bobby mason "
     "philip louis mary patricia jennifer linda elizabeth barbara susan jessica sarah karen lisa "
     "nancy betty margaret sandra ashley kimberly emily donna michelle carol amanda dorothy melissa "
     "deborah stephanie rebecca sharon laura cynthia kathleen amy angela shirley anna brenda pamela "
     "emma nicole helen samantha katherine christine debra rachel carolyn janet catherine maria "
     "heather diane ruth julie olivia joyce virginia victoria kelly lauren christina joan evelyn "
     "judith megan andrea cheryl hannah jacqueline martha gloria teresa ann sara madison frances "
     "kathryn janice jean abigail alice judy sophia denise doris marilyn danielle beverly isabella "
     "theresa diana natalie brittany charlotte marie kayla alexis lori sophie chloe mia ava "
     "amelia harper ella aria scarlett zoe lucy lily nora layla riley elena maya naomi leah "
     "sofia camila valentina lucia carmen rosa ana luis carlos miguel jorge pedro alejandro diego "
     "javier fernando ricardo eduardo sergio manuel antonio francisco rafael andres pablo mateo "
     "santiago priya rahul amit anil sunil raj ravi arjun vikram aditya rohan neha pooja anjali "
     "deepa sunita kavita aisha fatima mohammed muhammad ahmed ali omar hassan hussein yusuf ibrahim "
     "mustafa khalid layla zainab mariam noor wei li ming jun hui xin yan hiroshi takeshi yuki kenji "
     "akira haruto sakura yuna min seo ji hyun joon olga ivan dmitri sergei natasha svetlana anastasia "
     "katarina lukas jonas felix leon finn hans klaus jurgen stefan ingrid astrid sven lars erik "
     "pierre jean luc francois marc antoine camille chloe manon giulia giuseppe marco luca matteo "
     "francesca alessandro chiara kwame kofi ama chinedu ngozi oluwaseun tunde emeka amara zanele "
     "thabo sipho aiden liam oliver lucas elias caleb owen hunter isaac luke levi julian wyatt "
     "leo grayson jayden ezra theo hudson nolan jaxon asher ian gavin miles declan connor "
     "brooke megan tina tracy wendy sylvia gina rita vanessa monica erica renee jill kristen "
     "yolanda tamara sheila lydia alicia bianca claire daisy esther fiona gemma hazel iris jade "
     "kate leila lena mabel nadia paige quinn rhea stella tessa ursula vera wanda yasmin zara "
     "tom tim jim bob mike dave steve chris matt nick dan ben sam alex greg josh jon jeff ken "
     "tony rob pat liz beth kathy jenny sue becky katie jess meg abby ellie annie molly emmy "
     /* Slavic and Baltic */
     "oksana olena iryna yulia yuliya tetiana kateryna mykola taras bohdan andriy oleksandr "
     "vladimir boris pavel tomasz piotr krzysztof agnieszka malgorzata katarzyna magdalena marta "
     "marek jakub wojciech zofia jana petra lenka tereza ondrej nikola goran milica dragan "
     /* South Asian */
     "rajesh suresh ramesh mahesh ganesh vijay sanjay ajay deepak manoj ashok pradeep prakash "
     "arun kiran lakshmi priyanka deepika divya shreya swati nisha meera ananya aarav vivek "
     "nikhil rohit karan harpreet gurpreet manpreet simran aditi sanjana kavya ishaan "
     /* Spanish and Portuguese */
     "gustavo arturo ramiro joaquin alejandra guadalupe ximena mariana daniela gabriela paola "
     "fernanda beatriz joao tiago rodrigo marcelo leandro thiago renata lorena adriana esteban "
     "emilio lorenzo ignacio alvaro raul ruben hector julio cesar "
     /* Italian, French, German, Nordic */
     "giorgio giovanni paolo stefano federico elisa silvia valeria alessia benedetta elodie "
     "amelie margaux mathieu thierry philippe guillaume sebastien nathalie sandrine isabelle "
     "juliette wolfgang dieter uwe heike sabine birgit katrin annika henrik mikael johan nils "
     "sigrid freya anneli eero aino jussi oskar maja elin "
     /* Arabic, Turkish, Persian */
     "tariq karim rashid samir nabil walid youssef hamza bilal imran faisal amir reza mehdi "
     "samira rania dina hana nour salma amira zeynep emre mehmet ayse burak murat hamid farid "
     "farouk omid parisa shirin soraya "
     /* African */
     "chidi chiamaka adaeze ifeoma obinna uche femi yemi segun funmilayo kwabena akosua abena "
     "kojo naledi thandiwe lerato themba zodwa wanjiru njeri achieng amani baraka emmanuel "
     "olumide "
     /* East and Southeast Asian */
     "minh linh thanh huong trang haruka yui sota daiki riku minjun jiwoo seojun mei "
     /* English, Irish, Scottish, Welsh */
     "jake elliot elliott brent trevor danny gillian jenna joanne darnell jamal keisha tanisha "
     "deshawn tyrone malik jalen shane craig derek neil ross stuart callum hamish fergus "
     "siobhan aoife niamh ciaran padraig sinead eoin cormac mairead bridget colette imogen "
     "harriet beatrix agatha cecilia rosalind winifred gwen gwendolyn bronwyn rhys owain isla "
     "bea lottie maisie freddie archie alfie ollie rory kieran kai dustin travis cody shawn "
     "marcus darren wesley clint tanya tonya stacy stacey kristy mandy vicky nikki kerry "
     "lindsey lindsay courtney whitney kayleigh jocelyn marissa melanie priscilla rosemary "
     "eleanor eloise josephine louise lucille mildred doreen maureen noreen eileen colleen "
     "deirdre agnes edith ethel gertrude irene muriel phyllis norma gladys beryl bernadette "
     "clarence cyril desmond ernest herbert horace leonard lionel mervyn nigel reginald rupert "
     "stanley vernon wilfred hugh alistair angus malcolm ronan seamus"},
    /* given names that are also ordinary words (or places) */
    {LEX_FIRST_NAME | LEX_AMBIG_NAME,
     "will may june april august grace hope mark bill rose faith joy art chase dawn frank grant "
     "sandy lily ivy amber ruby pearl crystal summer autumn river sky storm rich guy don ray "
     "max penny holly destiny trinity angel wade reed drew gene sage jewel georgia paris florence "
     "sydney chelsea dallas savannah brooklyn lincoln carter cooper parker taylor tucker miles "
     "hunter mason rowan victor harry jasmine heather jordan austin madison victoria "
     "milan lance chad glen troy dale poppy yaw"},
    /* surnames that are not ordinary words */
    {LEX_SURNAME,
     "smith johnson williams jones garcia davis rodriguez martinez hernandez lopez gonzalez "
     "wilson anderson thomas jackson thompson harris sanchez clark ramirez lewis robinson allen "
     "wright scott torres nguyen flores adams nelson rivera campbell mitchell roberts gomez phillips "
     "evans diaz cruz edwards collins reyes stewart morris morales murphy rogers gutierrez ortiz "
     "morgan peterson kelly howard ramos kim cox richardson watson brooks chavez bennett mendoza "
     "ruiz hughes alvarez castillo sanders patel myers foster jimenez powell jenkins perry russell "
     "sullivan coleman butler henderson barnes gonzales fisher vasquez simmons romero patterson "
     "hamilton graham reynolds griffin wallace hayes bryant herrera gibson ellis tran medina "
     "aguilar stevens murray castro marshall owens harrison fernandez mcdonald washington kennedy "
     "vargas chen freeman webb guzman burns crawford olson simpson porter gordon mendez silva "
     "snyder dixon munoz hicks holmes palmer wagner robertson boyd salazar warren meyer schmidt "
     "garza daniels ferguson nichols stephens soto weaver gardner payne dunn kelley spencer hawkins "
     "arnold pierce vazquez hansen peters santos bradley elliott cunningham duncan armstrong "
     "carroll riley andrews alvarado delgado perkins hoffman johnston matthews pena richards "
     "contreras willis carpenter sandoval singh kumar sharma gupta khan ahmed hussain wang zhang "
     "liu yang huang zhao zhou tanaka suzuki sato takahashi watanabe yamamoto nakamura kobayashi "
     "choi jung kang schneider fischer weber becker schulz koch richter schwarz rossi russo ferrari "
     "esposito bianchi romano colombo ricci dubois durand lefebvre moreau laurent leroy nowak "
     "kowalski ivanov petrov smirnov popov okafor okonkwo adeyemi mensah ochieng kamau walsh byrne "
     "obrien oconnor mueller muller doe "
     "melnyk shevchenko kovalenko bondarenko iyer reddy nair menon pillai chatterjee banerjee "
     "mukherjee desai mehta joshi kapoor malhotra pereira ferreira oliveira souza almeida "
     "carvalho ribeiro araujo fernandes goncalves alves moreira papadopoulos papadakis georgiou "
     "yilmaz kaya demir sahin celik ozturk aydin arslan haddad nasser saleh mansour khalil aziz "
     "rahman hossain chowdhury akhtar iqbal qureshi siddiqui obi eze nwosu okeke okoro balogun "
     "bakare osei boateng asante owusu appiah mbeki khumalo dlamini ndlovu nkosi otieno mwangi "
     "njoroge virtanen korhonen nieminen lindqvist lindgren johansson andersson karlsson "
     "nilsson eriksson larsson olsen jensen nielsen pedersen andersen christensen dahl solberg "
     "haugen braun zimmermann hartmann kruger neumann schmitt krause lehmann fuchs vogel hahn "
     "keller bauer maier huber baumann winkler lorenz albrecht brandt bergmann lefevre girard "
     "fontaine rousseau chevalier perrin morel fournier marchand lambert mercier greco marino "
     "rizzo lombardi moretti barbieri santoro rinaldi caruso bellini kearney doolan whelan "
     "brennan nolan mulligan gallagher doherty mccarthy mcgrath mclaughlin mckenzie mcleod "
     "fraser davies griffiths lloyd holloway hargreaves hutchins pryce fenton delaney kessler "
     "kowalczyk wisniewski lewandowski lewandowska wozniak kaminski zielinski szymanski mazur"},

    /* ---- health ---- */
    {LEX_MEDICAL | LEX_SENSITIVE,
     "diabetes diabetic cancer tumor tumour leukemia leukaemia lymphoma melanoma carcinoma "
     "chemotherapy chemo radiotherapy hepatitis tuberculosis asthma emphysema pneumonia bronchitis "
     "covid influenza flu depression depressed anxiety bipolar schizophrenia schizophrenic psychosis "
     "autism autistic dementia alzheimer alzheimers parkinson parkinsons epilepsy epileptic seizure "
     "seizures stroke arthritis osteoporosis lupus fibromyalgia migraine migraines hypertension "
     "cholesterol arrhythmia angina insomnia anorexia bulimia obesity pregnant pregnancy miscarriage "
     "abortion infertility endometriosis menopause herpes syphilis chlamydia gonorrhea sclerosis "
     "crohn crohns colitis celiac ulcer cirrhosis dialysis concussion addiction addicted alcoholism "
     "alcoholic overdose relapse rehab suicidal suicide anemia hypothyroidism hyperthyroidism "
     "glaucoma cataract cataracts tinnitus eczema psoriasis allergy allergic fibrosis paralysis "
     "paralyzed cardiomyopathy tachycardia sepsis meningitis hiv std stds sti ptsd adhd ocd copd ibs "
     "gerd mastectomy hysterectomy vasectomy biopsy chemo transplant amputation "
     "metformin insulin lisinopril atorvastatin simvastatin rosuvastatin amlodipine losartan "
     "metoprolol warfarin apixaban eliquis xarelto clopidogrel ibuprofen acetaminophen paracetamol "
     "levothyroxine synthroid omeprazole pantoprazole prednisone methotrexate humira adalimumab "
     "sertraline zoloft fluoxetine prozac escitalopram lexapro citalopram paroxetine venlafaxine "
     "duloxetine bupropion wellbutrin trazodone quetiapine seroquel olanzapine risperidone "
     "aripiprazole abilify lamotrigine lamictal valproate depakote gabapentin pregabalin lyrica "
     "adderall ritalin methylphenidate vyvanse xanax alprazolam lorazepam ativan clonazepam "
     "klonopin diazepam valium ambien zolpidem oxycodone hydrocodone vicodin percocet morphine "
     "tramadol methadone suboxone buprenorphine naloxone ozempic semaglutide wegovy mounjaro "
     "tirzepatide jardiance trulicity victoza januvia truvada antiretroviral antiretrovirals "
     "antidepressant antidepressants antipsychotic antibiotics amoxicillin penicillin "
     "azithromycin doxycycline ciprofloxacin tamoxifen herceptin keytruda viagra cialis "
     "spironolactone estradiol inhaler albuterol epipen chemotherapy fever cough nausea vomiting "
     "diarrhea rash dizziness fatigue headache headaches migraine palpitations infection injury "
     "injured fractured concussed miscarried disorder disorders disease diseases ivf hpv "
     "stillbirth stillborn ketamine cocaine heroin opioid opioids fentanyl burnout psychiatric "
     "palliative hospice ventilator intubated mammogram cardiac pacemaker stent stents "
     "colposcopy"},
    /* health events specific enough to be health data once tied to a person */
    {LEX_MEDICAL | LEX_SENSITIVE, "diagnosed diagnosis prescribed hospitalized hospitalised surgery "
                                  "hospitalization hospitalisation"},
    /* general health words: they make a named person's context sensitive, but
     * "a hospital billing system I'm building" is not anyone's health data */
    {LEX_SENSITIVE | LEX_CARE,
     "prescription symptoms hospital admitted icu therapy therapist psychiatrist psychologist "
     "oncologist counseling counselling medication medications meds disability disabled sick "
     "illness oncology"},
    {LEX_SENSITIVE,
     "fired terminated termination dismissed disciplinary layoff laid resignation probation salary "
     "divorce divorced custody affair arrested arrest convicted conviction criminal jail prison "
     "incarcerated parole lawsuit sued harassment harassed misconduct abuse abused assault "
     "assaulted raped maternity paternity bereavement funeral died grief debt bankruptcy bankrupt "
     "foreclosure eviction evicted undocumented deported deportation asylum gay lesbian bisexual "
     "transgender demoted underperforming bullied bullying unemployed homeless suspended "
     "expelled overdosed cheating pip severance redundancy redundancies dismissal grievance "
     "discrimination discriminated racist racism slur slurs allegation allegations alleges "
     "sentenced sentencing convictions burglary theft stole stealing shoplifting blackmail "
     "blackmailed extortion scammed defrauded embezzlement embezzled abusive stalking stalker "
     "restraining rape trafficking drunk intoxicated sober sobriety gambling debts arrears "
     "owes owed garnishment repossessed overdrawn payslip refugee infidelity divorcing dui"},
    {LEX_LEAVE, "leave"},
    {LEX_COMPANY, "inc corp corporation ltd llc llp plc gmbh ag sa co company group bank holdings"},
    /* words after a medical term that make it a topic, not a person's condition;
     * after "my"/"our" (a word between at most), they make it someone's work:
     * "my pharmacology exam", "our cancer research" */
    {LEX_DATA_WORD, "dataset datasets data database research researchers study studies model models "
                    "classifier classification prediction predictor detection screening statistics "
                    "rates awareness trial trials app application software api project paper "
                    "papers article survey registry cohort patients population incidence "
                    "prevalence drug drugs market exam exams homework essay thesis dissertation "
                    "class course lecture presentation novel screenplay textbook slides "
                    "assignment coursework blog podcast"},
};

/* Acronyms that only count in capitals ("AIDS", not "aids"). */
static const char caps_only[] = "hiv std stds sti ptsd adhd ocd copd ibs gerd hpv pip dui";

#define LEX_MAX_WORD 24

/* A word is its bytes OR 0x20 (ASCII upper case folds to lower case; the
 * lexicon is ASCII, so no other byte can make a false match), zero-padded
 * into three 64-bit lanes: hashing and comparing are a few instructions. */
typedef struct {
    uint64_t w[3];
    uint32_t len;
    uint32_t flags;
} lex_slot;

struct det_lexicon {
    lex_slot *slots;
    size_t mask;
    /* one bit per (length, first byte, last byte), set for every word in the
     * table: most words of a text miss it, and miss it here, cheaply */
    uint64_t quick[1024];
};

static unsigned quick_key(const char *w, size_t len)
{
    unsigned first = (unsigned char)w[0] | 0x20, last = (unsigned char)w[len - 1] | 0x20;
    return ((first * 31u + last) * 32u + (unsigned)len) & 0xffffu;
}

/* Fold the word t[0..len) into w; `room` bytes may be read from t. */
static uint64_t fold_word(const char *t, size_t len, size_t room, uint64_t w[3])
{
    if (room >= LEX_MAX_WORD) {
        memcpy(w, t, LEX_MAX_WORD);   /* one unaligned load per lane */
    } else {
        unsigned char buf[LEX_MAX_WORD] = {0};
        memcpy(buf, t, len);
        memcpy(w, buf, sizeof buf);
    }
    uint64_t h = len * 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < 3; i++) {
        size_t have = len > 8 * i ? len - 8 * i : 0;
        uint64_t mask = have >= 8 ? ~0ull : (1ull << (8 * have)) - 1;
        w[i] = (w[i] | 0x2020202020202020ull) & mask;
        h = (h ^ w[i]) * 0xff51afd7ed558ccdull;
    }
    return h ^ (h >> 29);
}

static lex_slot *slot_for(const det_lexicon *lx, const uint64_t w[3], size_t len, uint64_t h)
{
    for (size_t i = h & lx->mask;; i = (i + 1) & lx->mask) {
        lex_slot *s = &lx->slots[i];
        if (s->len == 0 || (s->len == len && s->w[0] == w[0] && s->w[1] == w[1] && s->w[2] == w[2])) return s;
    }
}

static void put(det_lexicon *lx, const char *word, size_t len, uint32_t flags)
{
    uint64_t w[3];
    uint64_t h = fold_word(word, len, len, w);
    lex_slot *s = slot_for(lx, w, len, h);
    unsigned q = quick_key(word, len);
    lx->quick[q >> 6] |= 1ull << (q & 63);
    memcpy(s->w, w, sizeof w);
    s->len = (uint32_t)len;
    s->flags |= flags;
}

/* Count the words of a space-separated list and, given a table, put them in it. */
static size_t each_word(const char *list, det_lexicon *lx, uint32_t flags)
{
    size_t count = 0;
    for (const char *p = list; *p;) {
        while (*p == ' ') p++;
        const char *q = p;
        while (*q && *q != ' ') q++;
        if (q > p && q - p < LEX_MAX_WORD) {
            if (lx) put(lx, p, (size_t)(q - p), flags);
            count++;
        }
        p = q;
    }
    return count;
}

int det_lexicon_new(det_lexicon **out, char *err, size_t errlen)
{
    size_t words = 0;
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) words += each_word(rows[r].words, NULL, 0);
    size_t cap = 1024;
    while (cap < 3 * words) cap *= 2;
    det_lexicon *lx = calloc(1, sizeof *lx);
    lex_slot *slots = calloc(cap, sizeof *slots);
    if (!lx || !slots) {
        free(lx);
        free(slots);
        snprintf(err, errlen, "out of memory loading the detector's word lists (%zu words)", words);
        return -1;
    }
    lx->slots = slots;
    lx->mask = cap - 1;
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) each_word(rows[r].words, lx, rows[r].flags);
    each_word(caps_only, lx, LEX_CAPS_ONLY);
    *out = lx;
    return 0;
}

void det_lexicon_free(det_lexicon *lx)
{
    if (!lx) return;
    free(lx->slots);
    free(lx);
}

uint32_t det_lexicon_get(const det_lexicon *lx, const char *t, size_t n, size_t a, size_t b)
{
    size_t len = b - a;
    if (len == 0 || len >= LEX_MAX_WORD) return 0;
    unsigned q = quick_key(t + a, len);
    if (!(lx->quick[q >> 6] & (1ull << (q & 63)))) return 0;
    uint64_t w[3];
    uint64_t h = fold_word(t + a, len, n - a, w);
    const lex_slot *s = slot_for(lx, w, len, h);
    if (s->len == 0) return 0;
    if (s->flags & LEX_CAPS_ONLY) {
        for (size_t i = a; i < b; i++)
            if (det_is_lower((unsigned char)t[i])) return 0;
    }
    return s->flags;
}
