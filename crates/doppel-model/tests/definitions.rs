//! User-written definitions: every kind of mistake is refused with the
//! field and (for TOML) the line; TOML and JSON mean the same; the registry
//! holds built-ins and loads files.

use doppel_model::{
    DefinitionError, FieldValue, Format, Location, MAX_DEFINITION_BYTES, ModelDef, ModelRegistry, Rejection,
    SignalName, Value,
};

const SLEEP_LAB_TOML: &str = r#"
name = "sleep_lab"
description = "A sleep-lab participant."
strict = true
retention = "400d"
windows = ["1h"]

[properties.bed_time]
type = "string"
choices = ["early", "late"]

[signals.heart_rate]
unit = "bpm"
kind = "gauge"
range = [20, 250]
cadence = "1m"
windows = ["1h", "24h"]

[signals.arousal]
kind = "category"
categories = ["none", "minor", "major"]
retention = "30d"

[[relations]]
name = "wears"
target_model = "device"
many = true
"#;

const SLEEP_LAB_JSON: &str = r#"{
  "name": "sleep_lab",
  "description": "A sleep-lab participant.",
  "strict": true,
  "retention": "400d",
  "windows": ["1h"],
  "properties": { "bed_time": { "type": "string", "choices": ["early", "late"] } },
  "signals": {
    "heart_rate": { "unit": "bpm", "kind": "gauge", "range": [20, 250], "cadence": "1m", "windows": ["1h", "24h"] },
    "arousal": { "kind": "category", "categories": ["none", "minor", "major"], "retention": "30d" }
  },
  "relations": [ { "name": "wears", "target_model": "device", "many": true } ]
}"#;

fn signal(name: &str) -> SignalName {
    SignalName::new(name).unwrap()
}

fn number(value: f64) -> FieldValue {
    FieldValue::Number(Value::new(value).unwrap())
}

/// A minimal model with `body` appended, for one mistake at a time.
fn toml_with(body: &str) -> String {
    format!("name = \"m\"\n{body}")
}

/// The field and location a definition error names.
fn field_and_location(error: &DefinitionError) -> (String, Option<Location>) {
    match error {
        DefinitionError::Syntax { field, location, .. }
        | DefinitionError::Invalid { field, location, .. } => (field.to_string(), *location),
        other => panic!("expected a syntax or rule error, got {other:?}"),
    }
}

#[test]
fn json_and_toml_definitions_of_the_same_model_are_equal() {
    let from_toml = ModelDef::from_toml(SLEEP_LAB_TOML).unwrap();
    let from_json = ModelDef::from_json(SLEEP_LAB_JSON).unwrap();
    assert_eq!(from_toml, from_json);
    assert_eq!(from_toml.retention_for(&signal("arousal")).unwrap().to_string(), "30d");
    assert_eq!(from_toml.retention_for(&signal("heart_rate")).unwrap().to_string(), "400d");
}

#[test]
fn definitions_round_trip_through_their_own_serialization() {
    for def in [ModelDef::person(), ModelDef::from_toml(SLEEP_LAB_TOML).unwrap()] {
        let json = serde_json::to_string_pretty(&def).unwrap();
        assert_eq!(ModelDef::from_json(&json).unwrap(), def);
        let toml = toml::to_string(&def).unwrap();
        assert_eq!(ModelDef::from_toml(&toml).unwrap(), def);
    }
}

#[test]
fn deserializing_with_serde_directly_also_checks_the_rules() {
    let categories_on_a_gauge = r#"{"name": "m", "signals": {"x": {"kind": "gauge", "categories": ["a"]}}}"#;
    let error = serde_json::from_str::<ModelDef>(categories_on_a_gauge).unwrap_err().to_string();
    assert!(error.contains("signals.x.categories"), "{error}");
    assert!(serde_json::from_str::<ModelDef>(SLEEP_LAB_JSON).is_ok());
}

#[test]
fn strict_models_reject_undefined_signals_by_name() {
    let strict = ModelDef::from_toml(SLEEP_LAB_TOML).unwrap();
    let rejection = strict.check(&signal("steps"), &number(10.0)).unwrap_err();
    assert!(matches!(rejection, Rejection::UnknownSignal { .. }));
    assert_eq!(
        rejection.to_string(),
        "signal steps is not defined by model sleep_lab, which is strict and accepts only the signals it defines"
    );
    assert!(strict.windows_for(&signal("steps")).is_empty());
    assert_eq!(strict.check(&signal("heart_rate"), &number(55.0)).unwrap().get(), 55.0);
}

#[test]
fn non_strict_models_accept_undefined_numbers_and_refuse_undefined_text() {
    let open = ModelDef::from_toml(&SLEEP_LAB_TOML.replace("strict = true", "strict = false")).unwrap();
    assert_eq!(open.check(&signal("steps"), &number(1e9)).unwrap().get(), 1e9);
    let rejection = open.check(&signal("steps"), &FieldValue::Text("many".into())).unwrap_err();
    assert_eq!(
        rejection.to_string(),
        "signal steps is not defined by model sleep_lab, so only numbers are accepted, not \"many\""
    );
    assert_eq!(open.windows_for(&signal("steps")), open.windows.as_slice());
}

#[test]
fn strict_models_reject_undefined_properties() {
    let strict = ModelDef::from_toml(SLEEP_LAB_TOML).unwrap();
    let props = serde_json::json!({ "bed_time": "late", "shoe_size": 42 });
    let problems = strict.check_properties(props.as_object().unwrap()).unwrap_err();
    let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(messages, ["property shoe_size is not defined by model sleep_lab, which is strict"]);
}

/// One bad definition per rule: the error names the field, and the line
/// where the mistake is written.
#[test]
fn each_kind_of_bad_definition_names_its_field_and_line() {
    let cases: &[(&str, &str, &str, usize)] = &[
        // (definition body, field named, words of the reason, line)
        ("[signals.hr]\nkind = \"gauge\"\nrange = [250, 20]", "signals.hr.range", "smaller first", 4),
        ("[signals.hr]\nkind = \"gauge\"\nrange = [nan, 20]", "signals.hr.range", "finite", 4),
        ("[signals.hr]\nkind = \"gauge\"\nrange = [1, 2, 3]", "signals.hr.range", "two numbers", 4),
        ("[signals.hr]\nkind = \"guage\"", "signals.hr.kind", "unknown variant `guage`", 3),
        ("[signals.hr]\nkind = \"gauge\"\nrnage = [1, 2]", "signals.hr.rnage", "unknown field `rnage`", 4),
        ("[signals.hr]\nunit = \"bpm\"", "signals.hr", "missing field `kind`", 2),
        ("[signals.\"1hr\"]\nkind = \"gauge\"", "signals.1hr", "must start with a letter", 2),
        ("windows = [\"1h\", \"0s\"]", "windows[1]", "positive whole number", 2),
        ("windows = [\"1h\", \"60m\"]", "windows[1]", "listed twice", 2),
        ("[signals.hr]\nkind = \"gauge\"\ncadence = \"soon\"", "signals.hr.cadence", "invalid duration", 4),
        ("[signals.s]\nkind = \"category\"", "signals.s.categories", "non-empty list of categories", 2),
        ("[signals.s]\nkind = \"interval\"\ncategories = []", "signals.s.categories", "non-empty", 4),
        (
            "[signals.s]\nkind = \"category\"\ncategories = [\"a\", \"A\"]",
            "signals.s.categories[1]",
            "listed twice",
            4,
        ),
        (
            "[signals.s]\nkind = \"category\"\ncategories = [\"a\", \"\"]",
            "signals.s.categories[1]",
            "must not be empty",
            4,
        ),
        (
            "[signals.s]\nkind = \"gauge\"\ncategories = [\"a\"]",
            "signals.s.categories",
            "only category and interval",
            4,
        ),
        (
            "[signals.s]\nkind = \"category\"\ncategories = [\"a\"]\nrange = [0, 1]",
            "signals.s.range",
            "no numeric range",
            5,
        ),
        (
            "[signals.s]\nkind = \"interval\"\ncategories = [\"a\"]\nwindows = [\"1h\"]",
            "signals.s.windows",
            "cannot have them",
            5,
        ),
        ("retention = \"1h\"\nwindows = [\"1d\"]", "retention", "shorter than the live window 1d", 2),
        (
            "retention = \"1h\"\n[signals.hr]\nkind = \"gauge\"\nwindows = [\"1d\"]",
            "signals.hr.windows",
            "longer than the model's retention 1h",
            5,
        ),
        (
            "[signals.hr]\nkind = \"gauge\"\nretention = \"1d\"\nwindows = [\"2d\"]",
            "signals.hr.retention",
            "shorter than the live window 2d",
            4,
        ),
        ("[signals.hr]\nkind = \"gauge\"\nunit = \"a\\u0007\"", "signals.hr.unit", "control characters", 4),
        ("[properties.\"bad name\"]\ntype = \"string\"", "properties.bad name", "only letters, digits", 2),
        ("[properties.p]\ntype = \"string\"\nrange = [1, 2]", "properties.p.range", "integer and number", 4),
        (
            "[properties.p]\ntype = \"integer\"\nchoices = [\"a\"]",
            "properties.p.choices",
            "string properties",
            4,
        ),
        ("[properties.p]\ntype = \"date\"", "properties.p.type", "unknown variant `date`", 3),
        (
            "[[relations]]\nname = \"r\"\ntarget_model = \"x\"\n[[relations]]\nname = \"r\"\ntarget_model = \"x\"",
            "relations[1].name",
            "defined twice",
            6,
        ),
        (
            "[[relations]]\nname = \"r\"\ntarget_model = \"a/b\"",
            "relations[0].target_model",
            "only letters",
            4,
        ),
        ("strict = \"yes\"", "strict", "invalid type", 2),
        ("[signals.hr\nkind = \"gauge\"", "(top level)", "unclosed table", 2),
    ];
    for (body, field, reason, line) in cases {
        let text = toml_with(body);
        let error = ModelDef::from_toml(&text).unwrap_err();
        let (named, location) = field_and_location(&error);
        let message = error.to_string();
        assert_eq!(&named, field, "{body:?} gave {message:?}");
        assert!(message.contains(reason), "{body:?}: {message:?} should say {reason:?}");
        assert_eq!(location.map(|location| location.line), Some(*line), "{body:?}: {message:?}");
    }
}

#[test]
fn a_bad_model_name_is_named_on_its_line() {
    let error = ModelDef::from_toml("description = \"x\"\nname = \"two words\"").unwrap_err();
    assert_eq!(
        error.to_string(),
        "model \"two words\": name (line 2, column 1): name \"two words\" may hold only letters, digits, '_' and '-'"
    );
    let error = ModelDef::from_toml("description = \"x\"").unwrap_err();
    assert!(error.to_string().contains("missing field `name`"), "{error}");
}

#[test]
fn json_errors_name_the_field_and_the_line() {
    let range = "{\"name\": \"m\",\n \"signals\": {\"hr\": {\"kind\": \"gauge\",\n \"range\": [250, 20]}}}";
    let error = ModelDef::from_json(range).unwrap_err();
    assert!(matches!(error, DefinitionError::Syntax { format: Format::Json, .. }));
    let (field, location) = field_and_location(&error);
    assert_eq!((field.as_str(), location.map(|l| l.line)), ("signals.hr.range", Some(3)));

    // Rules checked after parsing name the field; JSON offers no line for them.
    let rule = r#"{"name": "m", "signals": {"s": {"kind": "category"}}}"#;
    let error = ModelDef::from_json(rule).unwrap_err();
    assert_eq!(field_and_location(&error), ("signals.s.categories".to_owned(), None));

    let trailing = ModelDef::from_json(r#"{"name": "m"} extra"#).unwrap_err();
    assert!(trailing.to_string().contains("trailing characters"), "{trailing}");
}

#[test]
fn oversized_definitions_are_refused_before_parsing() {
    let huge = format!("name = \"m\"\ndescription = \"{}\"", "x".repeat(MAX_DEFINITION_BYTES));
    assert!(matches!(ModelDef::from_toml(&huge), Err(DefinitionError::TooLarge { .. })));
    assert!(matches!(ModelDef::from_json(&huge), Err(DefinitionError::TooLarge { .. })));
    let long_description = toml_with(&format!("description = \"{}\"", "x".repeat(5000)));
    let error = ModelDef::from_toml(&long_description).unwrap_err();
    assert_eq!(field_and_location(&error).0, "description");
}

#[test]
fn registry_holds_the_builtins_and_refuses_duplicate_names() {
    let mut registry = ModelRegistry::with_builtins();
    assert_eq!(registry.names(), ["person"]);
    assert_eq!(*registry.get("person").unwrap(), ModelDef::person());
    assert!(registry.get("learner").is_none());

    let error = registry.insert(ModelDef::person()).unwrap_err();
    assert!(matches!(error, DefinitionError::DuplicateModel { ref name } if name == "person"), "{error}");
    registry.insert(ModelDef::from_toml(SLEEP_LAB_TOML).unwrap()).unwrap();
    assert_eq!(registry.names(), ["person", "sleep_lab"]);
    assert!(ModelRegistry::empty().names().is_empty());
}

#[test]
fn registry_checks_hand_built_definitions() {
    let mut def = ModelDef::from_toml(SLEEP_LAB_TOML).unwrap();
    def.signals.get_mut(&signal("arousal")).unwrap().categories.clear();
    let error = ModelRegistry::empty().insert(def).unwrap_err();
    assert!(error.to_string().contains("signals.arousal.categories"), "{error}");
}

#[test]
fn registry_loads_toml_and_json_files_from_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sleep_lab.toml"), SLEEP_LAB_TOML).unwrap();
    let other = SLEEP_LAB_JSON.replace("\"sleep_lab\"", "\"sleep_lab_2\"");
    std::fs::write(dir.path().join("other.JSON"), other).unwrap();
    std::fs::write(dir.path().join("README.md"), "not a model").unwrap();
    std::fs::create_dir(dir.path().join("nested.toml")).unwrap();

    let mut registry = ModelRegistry::with_builtins();
    assert_eq!(registry.load_dir(dir.path()).unwrap(), 2);
    assert_eq!(registry.names(), ["person", "sleep_lab", "sleep_lab_2"]);
}

#[test]
fn a_directory_with_one_bad_file_loads_nothing_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a_good.toml"), SLEEP_LAB_TOML).unwrap();
    std::fs::write(dir.path().join("b_bad.toml"), "name = \"bad\"\n[signals.x]\nkind = \"category\"\n")
        .unwrap();

    let mut registry = ModelRegistry::with_builtins();
    let error = registry.load_dir(dir.path()).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("b_bad.toml"), "{message}");
    assert!(message.contains("signals.x.categories (line 2, column 10)"), "{message}");
    assert_eq!(registry.names(), ["person"]);
}

#[test]
fn loading_a_file_names_it_in_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = ModelRegistry::with_builtins();

    let missing = dir.path().join("missing.toml");
    assert!(matches!(registry.load_file(&missing), Err(DefinitionError::Read { .. })));

    let yaml = dir.path().join("model.yaml");
    std::fs::write(&yaml, "name: m").unwrap();
    assert!(matches!(registry.load_file(&yaml), Err(DefinitionError::UnsupportedFile { .. })));

    let binary = dir.path().join("binary.toml");
    std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
    assert!(registry.load_file(&binary).unwrap_err().to_string().contains("not UTF-8"));

    let huge = dir.path().join("huge.json");
    std::fs::write(&huge, vec![b' '; MAX_DEFINITION_BYTES + 10]).unwrap();
    let error = registry.load_file(&huge).unwrap_err();
    assert!(error.to_string().contains(&format!("{} bytes", MAX_DEFINITION_BYTES + 10)), "{error}");

    let person_again = dir.path().join("person.toml");
    std::fs::write(&person_again, include_str!("../models/person.toml")).unwrap();
    let error = registry.load_file(&person_again).unwrap_err().to_string();
    assert!(error.contains("person.toml") && error.contains("already registered"), "{error}");

    let good = dir.path().join("sleep_lab.toml");
    std::fs::write(&good, SLEEP_LAB_TOML).unwrap();
    registry.load_file(&good).unwrap();
    assert!(registry.get("sleep_lab").is_some());
}
